package gen

// The behaviour the generator plants, and the signal thresholds it plants
// it against. The thresholds restate pipeline/lapse's documented defaults
// (docs/signals.md, lapse.DefaultConfig); the planted behaviour keeps a
// comfortable margin on the right side of each, so that a correct engine
// classifies every customer the same way whatever the random draws. The
// scenario test in pipeline/lapse checks that these copies still agree
// with lapse.DefaultConfig.
const (
	// Orders.
	orderJitter = 0.15 // each gap is the interval ±15%
	amountSigma = 0.2  // log-normal spread of order values around the personal median
	refundShare = 0.02 // share of orders partly refunded a few days later
	// Monthly buyers buy every four weeks or so, on a tight habit (a
	// day of the month, a similar basket): every 90-day window then holds
	// three or four of their orders, never two, so their 90-day spend
	// cannot halve by chance. With the weekly buyers' ±15% it would.
	monthlyMin    = 27.0
	monthlyMax    = 28.8
	monthlyJitter = 0.08
	monthlySigma  = 0.12

	// E-mail.
	disengageDays     = 40   // disengagers start to fade this long before the end
	disengageRampDays = 12   // and reach disengagedOpen this long after that
	disengagedOpen    = 0.05 // open propensity at the end of the fade

	// Support.
	backgroundTicketMinGap = 45.0  // days between two background tickets at least
	backgroundTicketMean   = 220.0 // mean extra days between background tickets
	plantedTicketQuiet     = 30.0  // no background ticket this close to a planted one

	// Assumed signal thresholds (see the package comment above).
	lapseFactor       = 3.0  // PURCHASE_LAPSE: silence > lapseFactor × usual interval
	lapseMinOrders    = 4    // orders before a personal interval is trusted
	spendDeclineRatio = 0.4  // SPEND_DECLINE: spend 90d < ratio × spend of the 90 days before
	openDeclineRatio  = 0.5  // ENGAGEMENT_DECLINE: open rate 30d < ratio × baseline
	frictionTickets   = 3    // SUPPORT_FRICTION: tickets opened or reopened in frictionDays
	frictionDays      = 30.0 //
	lowCSAT           = 2    // LOW_SATISFACTION: CSAT <= lowCSAT …
	lowNPS            = 6    // … or NPS <= lowNPS

	// Planted margins.
	lapseSilenceMin = lapseFactor + 1.5 // lapsers' silence, in intervals, at least …
	lapseSilenceMax = lapseFactor + 5   // … and at most
	returnSilence   = lapseFactor + 1.5 // returners' silence, in intervals, at least
	historyOrders   = lapseMinOrders + 3
)
