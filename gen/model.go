package gen

// The behaviour the generator plants, and the signal thresholds it plants
// it against. The thresholds restate pipeline/lapse's documented defaults
// (docs/signals.md, lapse.DefaultConfig) rather than import them, so that a
// change of a default shows up as a failing check (Thresholds, compared in
// pipeline/lapse's scenario test) instead of silently moving the truth. The
// planted behaviour keeps a comfortable margin on the right side of each
// threshold, so that a correct engine classifies every customer the same
// way whatever the random draws.
const (
	// Orders.
	orderJitter = 0.15 // each gap is the interval ±15%
	amountSigma = 0.2  // log-normal spread of order values around the personal median
	refundShare = 0.02 // share of orders partly refunded a few days later
	maxRefund   = 0.35 // of the order at most
	// Spend decliners' orders shrink this many days before the end: the
	// last 90-day window before the end holds only small orders.
	declineDays = 120
	// Monthly buyers buy every four weeks or so, on a tight habit (a
	// day of the month, a similar basket): every 90-day window then holds
	// three or four of their orders, never two, so their 90-day spend
	// cannot halve by chance. With the weekly buyers' ±15% it would.
	monthlyMin    = 27.0
	monthlyMax    = 28.5
	monthlyJitter = 0.08
	monthlySigma  = 0.08
	monthlyRefund = 0.15

	// E-mail.
	disengageDays     = 130  // disengagers start to fade this long before the end
	disengageRampDays = 10   // and reach disengagedOpen this long after that
	disengagedOpen    = 0.05 // open propensity at the end of the fade

	// Support.
	backgroundTicketMinGap = 45.0  // days between two background tickets at least
	backgroundTicketMean   = 220.0 // mean extra days between background tickets
	plantedTicketQuiet     = 30.0  // no background ticket this close to a planted one
	quickResolveDays       = 2.2   // background and low-satisfaction tickets resolve within, well inside the SLA

	// The signal thresholds, as lapse.DefaultConfig sets them.
	lapseFactor       = 2.0  // PURCHASE_LAPSE: silence > factor × usual interval (purchase_lapse.factor)
	lapseMinOrders    = 4    // orders before a personal interval is trusted (purchase_lapse.min_orders)
	spendDeclineRatio = 0.5  // SPEND_DECLINE: 90-day spend < ratio × the 90 days before (1 − spend_decline.min_drop)
	openDeclineRatio  = 0.5  // ENGAGEMENT_DECLINE: 30-day rate < ratio × baseline (engagement_decline.max_ratio)
	frictionTickets   = 3    // SUPPORT_FRICTION: tickets opened or reopened in 30 days (support_friction.tickets_30d)
	supportSLAHours   = 72.0 // SUPPORT_FRICTION: a ticket open longer (support_friction.sla)
	lowCSAT           = 2    // LOW_SATISFACTION: CSAT <= lowCSAT (low_satisfaction.max_csat) …
	lowNPS            = 6    // … or NPS <= lowNPS (low_satisfaction.max_nps)

	// Planted margins.
	lapseSilenceMin = lapseFactor + 2 // lapsers' silence, in intervals, at least …
	lapseSilenceMax = lapseFactor + 5 // … and at most
	returnSilence   = lapseFactor + 2 // returners' silence, in intervals, at least
	historyOrders   = lapseMinOrders + 3
)

// Thresholds returns the signal thresholds the truth is planted against,
// by lapse.Config's YAML names, so that a test can check them against
// lapse.DefaultConfig.
func Thresholds() map[string]float64 {
	return map[string]float64{
		"purchase_lapse.factor":        lapseFactor,
		"purchase_lapse.min_orders":    lapseMinOrders,
		"spend_decline.min_drop":       1 - spendDeclineRatio,
		"engagement_decline.max_ratio": openDeclineRatio,
		"support_friction.tickets_30d": frictionTickets,
		"support_friction.sla_hours":   supportSLAHours,
		"low_satisfaction.max_csat":    lowCSAT,
		"low_satisfaction.max_nps":     lowNPS,
	}
}
