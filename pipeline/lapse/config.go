package lapse

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// Config holds every threshold of the signal engine. Start from
// DefaultConfig, override fields (or unmarshal YAML over it), then call
// Validate. docs/signals.md explains each setting to a marketing analyst.
type Config struct {
	// AllowedLateness is how far behind its source's newest event an event
	// may arrive and still count as on time; the watermark trails each
	// source by this much.
	AllowedLateness time.Duration `yaml:"allowed_lateness" help:"how late an event may arrive (behind the newest event of its input) and still count as on time, as a duration, e.g. 1h"`
	// IdleTimeout is how long (wall time) a source may send nothing before
	// it stops holding the watermark back. Zero disables idleness.
	IdleTimeout time.Duration `yaml:"idle_timeout" help:"how long an input may stay silent (wall time) before it stops holding back event time, as a duration; 0 disables"`
	// MaxOrderDays caps the distinct order days kept per customer within
	// 180 days (32–64); past it the oldest close entries are merged.
	MaxOrderDays int `yaml:"max_order_days" help:"distinct order days kept per customer over 180 days (32 to 64); older close ones are merged past it"`

	Lapse        LapseConfig        `yaml:"purchase_lapse"`
	Model        ModelConfig        `yaml:"model"`
	Spend        SpendConfig        `yaml:"spend_decline"`
	Engagement   EngagementConfig   `yaml:"engagement_decline"`
	Channel      ChannelConfig      `yaml:"channel"`
	Support      SupportConfig      `yaml:"support_friction"`
	Satisfaction SatisfactionConfig `yaml:"low_satisfaction"`
	Value        ValueConfig        `yaml:"value"`
	Risk         RiskConfig         `yaml:"risk"`
	// Actions maps each reason to the action recommended when it is a
	// trigger's primary reason.
	Actions   map[event.Reason]event.Action `yaml:"actions" help:"action recommended for each primary reason, e.g. PURCHASE_LAPSE: WINBACK_OFFER"`
	Lifecycle LifecycleConfig               `yaml:"lifecycle"`
}

// LapseConfig is PURCHASE_LAPSE: silence past the customer's usual rhythm.
type LapseConfig struct {
	// Factor (k): a customer with a personal rhythm lapses when the
	// silence since the last order passes max(k × usual interval,
	// usual interval + SpreadFactor × spread).
	Factor float64 `yaml:"factor" help:"silence of this many usual purchase intervals makes a lapse, a multiple, e.g. 2"`
	// SpreadFactor (m) multiplies the interval spread (1.4826 × MAD).
	SpreadFactor float64 `yaml:"spread_factor" help:"a lapse also needs silence past the usual interval plus this many spreads (robust standard deviations); 0 ignores the spread"`
	// MinOrders is the number of orders (purchase occasions) before the
	// customer's own rhythm is trusted; with fewer, the cohort's is used.
	MinOrders int `yaml:"min_orders" help:"purchases needed before a customer's own rhythm is trusted; fewer use the cohort rhythm"`
	// MinGapDays and MaxGapDays bound the silence that counts as a lapse.
	MinGapDays float64 `yaml:"min_gap_days" help:"shortest silence that can count as a lapse, in days"`
	MaxGapDays float64 `yaml:"max_gap_days" help:"longest silence in days needed for a lapse, whatever the customer's rhythm"`
	// MinIntervalHours: orders closer than this are one purchase occasion.
	MinIntervalHours float64 `yaml:"min_interval_hours" help:"orders closer than this many hours count as one purchase"`
	// CohortDefaultDays is the cohort interval until CohortMinCustomers
	// customers of the task have a personal rhythm.
	CohortDefaultDays  float64 `yaml:"cohort_default_days" help:"purchase interval in days assumed for customers without a rhythm until enough customers have one"`
	CohortMinCustomers int     `yaml:"cohort_min_customers" help:"customers with their own rhythm needed before the cohort median interval is used"`
	// CohortMinDays floors the cohort interval. The cohort median leans
	// towards frequent buyers (they reach min_orders first), and a
	// newcomer slower than the median would otherwise be called lapsed
	// before its second order was even due.
	CohortMinDays float64 `yaml:"cohort_min_days" help:"shortest purchase interval in days assumed for a customer without their own rhythm; 0 trusts the cohort median alone"`
	// HorizonDays is the horizon of p_lapse, the calibrated probability
	// of no order within this many days (see docs/signals.md), and of the
	// expected orders behind the CLV.
	HorizonDays float64 `yaml:"horizon_days" help:"p_lapse is the probability of no order within this many days; also the CLV horizon"`
	// MaxPAlive: besides the rhythm's gap, a lapse needs the purchase
	// model's probability that the customer is still alive to have fallen
	// to this (0 turns the check off).
	MaxPAlive float64 `yaml:"max_p_alive" help:"a lapse also needs the purchase model's P(alive) at or below this, 0 to 1 (0 turns the check off)"`
	// DormantRate makes dropping out not final in p_lapse's forecast: a
	// customer who drops out buys at this share of its old rate
	// (btyd.Params.PNoPurchaseDormant). 0 is MBG/NBD's death. On the two
	// real panels 0.01 and 0.02 ranked best and 0.1 already worse than
	// 0.01 (docs/signals.md); 0.5, a dormant customer at half its rate,
	// caps it where dormancy stops meaning much.
	DormantRate float64 `yaml:"dormant_rate" help:"in p_lapse, a customer who dropped out still buys at this share of its old rate, 0 to 0.5 (0: dropping out is final, as in MBG/NBD)"`
	// MaxRegularity caps the Erlang order K that a customer's own rhythm
	// lends the purchase model (MBG/CNBD-k with the customer's K =
	// 1/CV² of its intervals): a clockwork buyer's silence is stronger
	// evidence than a Poisson buyer's. 1 turns it off (plain MBG/NBD).
	MaxRegularity int `yaml:"max_regularity" help:"highest Erlang order (1 to 32) a regular customer's rhythm lends the purchase model, so that a clockwork buyer's silence counts as stronger evidence; 1 turns it off"`
}

// ModelConfig is the refit of the purchase model behind p_lapse, the
// evidence of PURCHASE_LAPSE and the CLV (see refit.go and
// docs/signals.md, "Refitting the purchase model").
type ModelConfig struct {
	// RefitDays: each task refits the population parameters whenever its
	// watermark crosses a multiple of this many days (event time, counted
	// from the Unix epoch), so that a replay refits at the same place.
	RefitDays int `yaml:"refit_days" help:"the task refits the purchase model's population parameters each time its watermark (event time) crosses a multiple of this many days; 0 turns refitting off"`
	// RefitMaxDays: a refit that barely improves on the parameters in
	// use doubles the wait to the next one, up to this many days; one
	// that does improve brings it back to RefitDays (refit.go).
	RefitMaxDays int `yaml:"refit_max_days" help:"a refit that leaves the model as good as unchanged doubles the wait to the next one, up to this many days of event time (a refit that moves it brings the wait back to refit_days); equal to refit_days: refit every refit_days"`
	// RefitSample: a refit reads at most this many customers with an
	// order, those with the smallest hash of their customer id.
	RefitSample int `yaml:"refit_sample" help:"customers with an order that a refit reads at most, picked by a hash of the customer id"`
	// RefitMinCustomers: with fewer customers with an order the task keeps
	// its parameters.
	RefitMinCustomers int `yaml:"refit_min_customers" help:"customers with an order a task needs before a refit moves its parameters"`
	// RefitMaxIterations bounds the fit: twice this many quasi-Newton
	// iterations (MBG/NBD), or this many in each of the simplex's two
	// rounds (other models).
	RefitMaxIterations int `yaml:"refit_max_iterations" help:"bounds a refit's optimiser: twice this many quasi-Newton iterations (it starts from the current parameters and usually needs a few dozen likelihood evaluations)"`
}

// SpendConfig is SPEND_DECLINE: still buying, but spending much less.
type SpendConfig struct {
	// MinDrop: fires when spend over 90 days is down by more than this
	// share versus the 90 days before.
	MinDrop float64 `yaml:"min_drop" help:"share of 90-day spend lost against the 90 days before that fires, 0 to 1 (0.5 = down 50%)"`
	// MinPrevOrders: orders needed in the earlier 90 days.
	MinPrevOrders int `yaml:"min_prev_orders" help:"orders needed in the earlier 90 days to judge a spend decline"`
	// MinRecentOrders: orders needed in the last 90 days to count as
	// still buying (a customer past their lapse due is not).
	MinRecentOrders int `yaml:"min_recent_orders" help:"orders needed in the last 90 days to count as still buying"`
	// MinOrderValueDrop: the spend per order (net spend ÷ net orders) of
	// the last 90 days must also be down by more than this share. A
	// monthly buyer's 90-day windows hold three or four orders depending
	// on the day, so a sum alone halves by chance (one order fewer and
	// smaller baskets); spend per order does not depend on that phase.
	// 0 turns the check off.
	MinOrderValueDrop float64 `yaml:"min_order_value_drop" help:"share of spend per order lost against the 90 days before that must come with the spend drop, 0 to 1 (0 turns this check off)"`
}

// EngagementConfig is ENGAGEMENT_DECLINE: opens or clicks far below the
// customer's own norm.
type EngagementConfig struct {
	// MaxRatio: fires when the 30-day open rate is below this share of
	// the customer's baseline rate and the sequential test (AltRatio,
	// CUSUMThreshold) has alarmed …
	MaxRatio float64 `yaml:"max_ratio" help:"fires when the 30-day open rate is below this share of the customer's own baseline rate (0 to 1) and the sequential test has alarmed"`
	// MaxPValue: … and, if below 1, so few opens would happen with
	// probability at most this if the customer still opened at the
	// baseline rate (binomial tail). A per-look check: the sequential test
	// is what holds false alarms to a budget, so it is off (1) by default.
	MaxPValue float64 `yaml:"max_p_value" help:"optional per-look check: highest chance (0 to 1) that the 30-day drop is bad luck at the baseline rate; 1 (the default) turns it off, the sequential test bounds false alarms"`
	// MinDelivered30d: e-mails delivered in 30 days at least.
	MinDelivered30d int `yaml:"min_delivered_30d" help:"e-mails delivered in the last 30 days needed before the rate is judged"`
	// MinBaselineDelivered: decayed deliveries behind the baseline at
	// least.
	MinBaselineDelivered float64 `yaml:"min_baseline_delivered" help:"weighted past deliveries needed behind the baseline rate"`
	// MinOpenBaseline: baseline open rates below this are too low to
	// decline from (the sequential test stops).
	MinOpenBaseline float64 `yaml:"min_open_baseline" help:"baseline open rates below this share (0 to 1) are too low to decline from"`
	// MinClickBaseline: the click p-value in the evidence is computed
	// from this click baseline up. Click rates no longer fire on their
	// own (a click counts as an open; see cusum.go); the setting stays so
	// that existing configs load.
	MinClickBaseline float64 `yaml:"min_click_baseline" help:"baseline click rate (0 to 1) from which the trigger's evidence reports a click p-value; clicks count as opens and no longer fire on their own"`
	// BaselineHalfLifeDays is the half-life of the baseline's decayed
	// counts. The baseline never includes the current 30 days.
	BaselineHalfLifeDays float64 `yaml:"baseline_half_life_days" help:"days after which a past delivery or open counts half in the baseline"`
	// AltRatio and CUSUMThreshold set the sequential test that must also
	// alarm (Page's CUSUM of the log-likelihood ratio of "the rate fell
	// to AltRatio × baseline" against "the rate is the baseline", per
	// delivered e-mail; see docs/signals.md): it alarms when the
	// statistic reaches CUSUMThreshold nats. A steady customer's false
	// alarms come at most once per e^threshold deliveries (about 3,000 at
	// the default 8), so the threshold, not a per-look p-value, sets the
	// false-alarm budget.
	AltRatio       float64 `yaml:"alt_ratio" help:"the fallen open rate the sequential test looks for, as a share (0 to 1) of the customer's baseline rate"`
	CUSUMThreshold float64 `yaml:"cusum_threshold" help:"evidence (natural-log likelihood ratio) the sequential test needs before engagement counts as declined; each +1 makes false alarms about e times rarer and detection a few e-mails slower"`
	// BaselineMarginSE and MaxBaseline shape the rate the test assumes:
	// the baseline less this many standard errors of its estimate, at
	// most MaxBaseline (see cusum.go).
	BaselineMarginSE float64 `yaml:"baseline_margin_se" help:"standard errors taken off the baseline open rate before the sequential test uses it, so that a lucky baseline does not make ordinary misses look like a drop"`
	MaxBaseline      float64 `yaml:"max_baseline" help:"highest baseline open rate (0 to 1) the sequential test assumes; caps the evidence one unopened e-mail gives"`
}

// ChannelConfig is EMAIL_UNSUBSCRIBED and EMAIL_BOUNCED.
type ChannelConfig struct {
	// ActiveDays: how long an unsubscribe or hard bounce counts towards
	// the risk score after it happened.
	ActiveDays float64 `yaml:"active_days" help:"days an unsubscribe or bounce counts towards the risk score"`
}

// SupportConfig is SUPPORT_FRICTION.
type SupportConfig struct {
	// Tickets30d: tickets opened or reopened within 30 days that fire.
	Tickets30d int `yaml:"tickets_30d" help:"tickets opened or reopened within 30 days that fire support friction"`
	// ReopenFires: any reopened ticket fires.
	ReopenFires bool `yaml:"reopen_fires" help:"a reopened ticket fires support friction on its own (true or false)"`
	// SLA: a ticket still open this long after it was (re)opened fires.
	SLA time.Duration `yaml:"sla" help:"a ticket still open this long after it was opened or reopened fires, as a duration, e.g. 72h"`
	// ComplaintCategories are the ticket categories (case-insensitive)
	// that count as complaints; a complaint fires on its own.
	ComplaintCategories []string `yaml:"complaint_categories" help:"ticket categories that count as complaints and fire on their own, comma-separated, any case"`
	// UrgentIsComplaint also counts URGENT tickets as complaints.
	UrgentIsComplaint bool `yaml:"urgent_is_complaint" help:"also count URGENT tickets as complaints (true or false)"`
}

// SatisfactionConfig is LOW_SATISFACTION.
type SatisfactionConfig struct {
	MaxCSAT int `yaml:"max_csat" help:"a CSAT answer at or below this fires (scale 1 to 5)"` // CSAT at or below fires (1–5 scale)
	MaxNPS  int `yaml:"max_nps" help:"an NPS answer at or below this fires (scale 0 to 10)"` // NPS at or below fires (0–10 scale)
	// ActiveDays: how long a low answer counts towards the risk score.
	ActiveDays float64 `yaml:"active_days" help:"days a low survey answer counts towards the risk score"`
}

// ValueConfig is the customer value model: CLV and tiers.
type ValueConfig struct {
	// LifetimeYears is the CLV horizon: CLV is the value expected over
	// this many years (docs/signals.md).
	LifetimeYears float64 `yaml:"lifetime_years" help:"CLV horizon: the value a customer is expected to bring over this many years"`
	// DefaultIntervalDays floors the span over which the CLV's cap
	// measures a customer's own purchase rate (a new customer counts as
	// one purchase per this many days).
	DefaultIntervalDays float64 `yaml:"default_interval_days" help:"the CLV never predicts more than twice the customer's own purchase rate, measured over at least this many days"`
	// ShrinkOrders is the weight, in purchases, of the task's average
	// order value in a customer's (Gamma-Gamma-like shrinkage).
	ShrinkOrders float64 `yaml:"shrink_orders" help:"weight in purchases of the task's average order value in a customer's order value for the CLV; 0 uses the customer's own"`
	// HighQuantile and LowQuantile split the task's CLV distribution:
	// HIGH at or above HighQuantile, LOW below LowQuantile.
	HighQuantile float64 `yaml:"high_quantile" help:"CLV percentile (0 to 1) from which a customer is HIGH value"`
	LowQuantile  float64 `yaml:"low_quantile" help:"CLV percentile (0 to 1) below which a customer is LOW value"`
	// MinCustomers: below this many buying customers in the task every
	// buying customer is MEDIUM (percentile 0.5).
	MinCustomers int `yaml:"min_customers" help:"buying customers needed in a task before value tiers are assigned (until then all are MEDIUM)"`
}

// RiskConfig combines signals into the risk score and the priority.
type RiskConfig struct {
	// Weights per reason: risk = 1 − Π(1 − weight × severity) over the
	// active reasons.
	Weights map[event.Reason]float64 `yaml:"weights" help:"weight (0 to 1) of each reason in the risk score, e.g. PURCHASE_LAPSE: 0.6"`
	// ValueWeight: priority = 1 + 99 × risk × ((1 − w) + w × value
	// percentile).
	ValueWeight float64 `yaml:"value_weight" help:"how much customer value counts in the priority, 0 (risk only) to 1"`
	// LoyaltyMaxRisk: a HIGH-tier customer below this risk gets
	// LOYALTY_REWARD instead of a win-back offer or re-engagement.
	LoyaltyMaxRisk float64 `yaml:"loyalty_max_risk" help:"HIGH-value customers below this risk (0 to 1) get LOYALTY_REWARD instead of an offer; 0 disables"`
}

// LifecycleConfig governs trigger ids, cooldowns and recovery.
type LifecycleConfig struct {
	// CooldownDays: a reason does not fire again for the same customer
	// within this many days (event time) of its last trigger …
	CooldownDays int `yaml:"cooldown_days" help:"days (event time) before the same reason may fire again for a customer"`
	// CooldownDaysByReason overrides CooldownDays per reason.
	CooldownDaysByReason map[event.Reason]int `yaml:"cooldown_days_by_reason" help:"cooldown in days per reason, overriding cooldown_days, e.g. SUPPORT_FRICTION: 14"`
	// PreemptMargin: … unless the new trigger's priority is at least this
	// many points above that last trigger's.
	PreemptMargin int `yaml:"preempt_margin" help:"priority points (1 to 100) a trigger needs above the last one to fire within its cooldown; 100 disables"`
	// RecoverOn: reasons whose trigger opens an episode that an order
	// closes with a RECOVERED trigger.
	RecoverOn []event.Reason `yaml:"recover_on" help:"reasons whose trigger is followed by a RECOVERED trigger when the customer orders again, comma-separated"`
	// RecoveredAction is the action carried by RECOVERED triggers.
	RecoveredAction event.Action `yaml:"recovered_action" help:"action carried by RECOVERED triggers, e.g. LOYALTY_REWARD"`

	// Holdout turns the control group on: HoldoutShare of WINBACK
	// triggers (by a hash of customer and episode, see Holdout) go out
	// with treatment CONTROL, so that marketing automation records them
	// and does nothing, and their RECOVERED follow-ups measure how many
	// customers come back without a campaign (holdout.go).
	Holdout bool `yaml:"holdout" help:"assign a share of WINBACK triggers to a control group (treatment CONTROL: record, do not act) to measure the campaigns' incremental effect (true or false)"`
	// HoldoutShare is the share of WINBACK triggers in the control group.
	HoldoutShare float64 `yaml:"holdout_share" help:"share (0 to 0.5) of WINBACK triggers assigned to the control group"`
	// HoldoutShareBy overrides HoldoutShare for a primary reason
	// ("SUPPORT_FRICTION"), a value tier ("HIGH") or both ("HIGH/
	// SUPPORT_FRICTION"); the most specific key wins: tier/reason, then
	// reason, then tier.
	HoldoutShareBy map[string]float64 `yaml:"holdout_share_by" help:"control share per primary reason, value tier, or TIER/REASON, overriding holdout_share, e.g. HIGH/SUPPORT_FRICTION: 0"`
	// MaxTriggersPerCustomer and BudgetDays are the contact budget: at
	// most this many WINBACK triggers per customer within BudgetDays days
	// (event time), whatever their reasons. A trigger the budget blocks
	// waits (budget.go). BudgetDays 0 turns the budget off.
	MaxTriggersPerCustomer int `yaml:"max_triggers_per_customer" help:"contact budget: WINBACK triggers per customer (1 to 4) allowed within budget_days, across reasons"`
	BudgetDays             int `yaml:"budget_days" help:"contact budget window in days (event time); a trigger over the budget waits until it frees; 0 turns the budget off"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		AllowedLateness: time.Hour,
		IdleTimeout:     2 * time.Minute,
		MaxOrderDays:    48,
		Lapse: LapseConfig{
			Factor:             2.0,
			SpreadFactor:       3.0,
			MinOrders:          4,
			MinGapDays:         7,
			MaxGapDays:         365,
			MinIntervalHours:   12,
			CohortDefaultDays:  30,
			CohortMinCustomers: 20,
			CohortMinDays:      21,
			HorizonDays:        90,
			MaxPAlive:          0.5,
			DormantRate:        0.01,
			MaxRegularity:      16,
		},
		Model: ModelConfig{RefitDays: 7, RefitMaxDays: 56, RefitSample: 2000, RefitMinCustomers: 200, RefitMaxIterations: 200},
		Spend: SpendConfig{MinDrop: 0.5, MinPrevOrders: 3, MinRecentOrders: 2, MinOrderValueDrop: 0.5},
		Engagement: EngagementConfig{
			MaxRatio:             0.5,
			MaxPValue:            1,
			MinDelivered30d:      4,
			MinBaselineDelivered: 8,
			MinOpenBaseline:      0.1,
			MinClickBaseline:     0.05,
			BaselineHalfLifeDays: 60,
			AltRatio:             0.2,
			CUSUMThreshold:       8,
			BaselineMarginSE:     0.75,
			MaxBaseline:          0.6,
		},
		Channel: ChannelConfig{ActiveDays: 30},
		Support: SupportConfig{
			Tickets30d:          3,
			ReopenFires:         true,
			SLA:                 72 * time.Hour,
			ComplaintCategories: []string{"complaint"},
		},
		Satisfaction: SatisfactionConfig{MaxCSAT: 2, MaxNPS: 6, ActiveDays: 90},
		Value: ValueConfig{
			LifetimeYears:       3,
			DefaultIntervalDays: 60,
			ShrinkOrders:        3,
			HighQuantile:        0.8,
			LowQuantile:         0.5,
			MinCustomers:        20,
		},
		Risk: RiskConfig{
			Weights: map[event.Reason]float64{
				event.ReasonPurchaseLapse:     0.6,
				event.ReasonSpendDecline:      0.4,
				event.ReasonEngagementDecline: 0.3,
				event.ReasonEmailUnsubscribed: 0.35,
				event.ReasonEmailBounced:      0.3,
				event.ReasonSupportFriction:   0.45,
				event.ReasonLowSatisfaction:   0.4,
			},
			ValueWeight:    0.6,
			LoyaltyMaxRisk: 0.35,
		},
		Actions: map[event.Reason]event.Action{
			event.ReasonPurchaseLapse:     event.ActionWinbackOffer,
			event.ReasonSpendDecline:      event.ActionWinbackOffer,
			event.ReasonEngagementDecline: event.ActionReengagement,
			event.ReasonEmailUnsubscribed: event.ActionChannelSwitch,
			event.ReasonEmailBounced:      event.ActionChannelSwitch,
			event.ReasonSupportFriction:   event.ActionServiceRecovery,
			event.ReasonLowSatisfaction:   event.ActionServiceRecovery,
		},
		Lifecycle: LifecycleConfig{
			CooldownDays:    30,
			PreemptMargin:   20,
			RecoverOn:       []event.Reason{event.ReasonPurchaseLapse},
			RecoveredAction: event.ActionLoyaltyReward,

			Holdout:                true,
			HoldoutShare:           0.1,
			MaxTriggersPerCustomer: 1,
			BudgetDays:             14,
		},
	}
}

var knownActions = []event.Action{
	event.ActionWinbackOffer, event.ActionServiceRecovery, event.ActionReengagement,
	event.ActionChannelSwitch, event.ActionLoyaltyReward,
}

// FieldError is a problem with one field of Config, named by its YAML
// path (purchase_lapse.factor, or actions.PURCHASE_LAPSE for a map's
// entry).
type FieldError struct{ Field, Problem string }

func (e *FieldError) Error() string { return "lapse config: " + e.Field + ": " + e.Problem }

// Validate checks every field and returns all problems at once, each a
// *FieldError naming the field and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	between := func(field string, v, lo, hi float64, fix string) {
		if !finite(v) || v < lo || v > hi {
			bad(field, "is %v, must be between %v and %v: %s", v, lo, hi, fix)
		}
	}
	if c.AllowedLateness < 0 || c.AllowedLateness > 7*24*time.Hour {
		bad("allowed_lateness", "is %v, must be between 0 and 168h: set how late an event may arrive, e.g. 1h", c.AllowedLateness)
	}
	if c.IdleTimeout < 0 {
		bad("idle_timeout", "is %v, must be >= 0: set how long a silent source holds the watermark back, e.g. 2m (0 disables)", c.IdleTimeout)
	}
	if c.MaxOrderDays < window.MinOrderEntries || c.MaxOrderDays > window.MaxOrderEntries {
		bad("max_order_days", "is %d, must be between %d and %d: e.g. 48", c.MaxOrderDays, window.MinOrderEntries, window.MaxOrderEntries)
	}

	l := &c.Lapse
	between("purchase_lapse.factor", l.Factor, 1.1, 20, "how many usual intervals of silence make a lapse, e.g. 2")
	between("purchase_lapse.spread_factor", l.SpreadFactor, 0, 20, "how many spreads above the usual interval to allow, e.g. 3 (0 ignores the spread)")
	if l.MinOrders < 3 || l.MinOrders > window.MaxIntervals+1 {
		bad("purchase_lapse.min_orders", "is %d, must be between 3 and %d: orders before a personal rhythm is trusted, e.g. 4", l.MinOrders, window.MaxIntervals+1)
	}
	between("purchase_lapse.min_gap_days", l.MinGapDays, 1, 365, "the shortest silence that can be a lapse, e.g. 7")
	if !finite(l.MaxGapDays) || l.MaxGapDays < l.MinGapDays || l.MaxGapDays > 2000 {
		bad("purchase_lapse.max_gap_days", "is %v, must be between min_gap_days (%v) and 2000: the longest silence needed for a lapse, e.g. 365", l.MaxGapDays, l.MinGapDays)
	}
	between("purchase_lapse.min_interval_hours", l.MinIntervalHours, 0, 72, "orders closer than this are one purchase occasion, e.g. 12")
	between("purchase_lapse.cohort_default_days", l.CohortDefaultDays, 1, 730, "the interval assumed before the task knows enough rhythms, e.g. 30")
	between("purchase_lapse.cohort_min_days", l.CohortMinDays, 0, 730, "the shortest interval assumed for a customer without a rhythm, e.g. 21 (0 trusts the cohort median alone)")
	between("purchase_lapse.horizon_days", l.HorizonDays, 1, 3650, "the horizon of p_lapse and of the CLV in days, e.g. 90")
	between("purchase_lapse.max_p_alive", l.MaxPAlive, 0, 0.99, "the P(alive) a lapse needs to have fallen to, e.g. 0.5 (0 turns the check off)")
	between("purchase_lapse.dormant_rate", l.DormantRate, 0, 0.5, "the share of its old rate a customer who dropped out still buys at in p_lapse, e.g. 0.01 (0: dropping out is final)")
	if l.MaxRegularity < 1 || l.MaxRegularity > 32 {
		bad("purchase_lapse.max_regularity", "is %d, must be between 1 and 32: the highest Erlang order a regular rhythm lends the purchase model, e.g. 16 (1 turns it off)", l.MaxRegularity)
	}
	if l.CohortMinCustomers < 1 {
		bad("purchase_lapse.cohort_min_customers", "is %d, must be >= 1: customers with a rhythm before the cohort median is used, e.g. 20", l.CohortMinCustomers)
	}

	m := &c.Model
	if m.RefitDays < 0 || m.RefitDays > 365 {
		bad("model.refit_days", "is %d, must be between 0 and 365: event-time days between refits of the purchase model, e.g. 7 (0 turns refitting off)", m.RefitDays)
	}
	if m.RefitDays > 0 && (m.RefitMaxDays < m.RefitDays || m.RefitMaxDays > 365) {
		bad("model.refit_max_days", "is %d, must be between refit_days (%d) and 365: the longest wait between refits when the model stays as good as unchanged, e.g. 56", m.RefitMaxDays, m.RefitDays)
	}
	if m.RefitSample < 100 || m.RefitSample > 1_000_000 {
		bad("model.refit_sample", "is %d, must be between 100 and 1000000: customers a refit reads at most, e.g. 2000", m.RefitSample)
	}
	if m.RefitMinCustomers < 1 || m.RefitMinCustomers > m.RefitSample {
		bad("model.refit_min_customers", "is %d, must be between 1 and refit_sample (%d): customers with an order before a refit moves the parameters, e.g. 200", m.RefitMinCustomers, m.RefitSample)
	}
	if m.RefitMaxIterations < 10 || m.RefitMaxIterations > 4000 {
		bad("model.refit_max_iterations", "is %d, must be between 10 and 4000: the optimiser's iterations per round, e.g. 200", m.RefitMaxIterations)
	}

	s := &c.Spend
	between("spend_decline.min_drop", s.MinDrop, 0.05, 0.99, "the drop in 90-day spend that fires, e.g. 0.5 for 50%")
	if s.MinPrevOrders < 1 {
		bad("spend_decline.min_prev_orders", "is %d, must be >= 1: orders needed in the earlier 90 days, e.g. 3", s.MinPrevOrders)
	}
	if s.MinRecentOrders < 1 {
		bad("spend_decline.min_recent_orders", "is %d, must be >= 1: orders in the last 90 days to count as still buying, e.g. 2", s.MinRecentOrders)
	}

	between("spend_decline.min_order_value_drop", s.MinOrderValueDrop, 0, 0.99, "the drop in spend per order that must come with a spend decline, e.g. 0.5 for 50% (0 turns the check off)")

	g := &c.Engagement
	between("engagement_decline.max_ratio", g.MaxRatio, 0.01, 0.99, "the share of the baseline rate below which engagement declined, e.g. 0.5")
	between("engagement_decline.max_p_value", g.MaxPValue, 1e-9, 1, "the binomial tail probability of the 30-day drop that still fires, e.g. 1 (off: the sequential test bounds false alarms) or 0.05 for an extra per-look check")
	if g.MinDelivered30d < 1 || g.MinDelivered30d > 200 {
		bad("engagement_decline.min_delivered_30d", "is %d, must be between 1 and 200: e-mails delivered in 30 days before a rate is judged, e.g. 4", g.MinDelivered30d)
	}
	between("engagement_decline.min_baseline_delivered", g.MinBaselineDelivered, 1, 10000, "decayed deliveries behind a baseline, e.g. 8")
	between("engagement_decline.min_open_baseline", g.MinOpenBaseline, 0, 1, "the lowest baseline open rate worth watching, e.g. 0.1")
	between("engagement_decline.min_click_baseline", g.MinClickBaseline, 0, 1, "the lowest baseline click rate worth watching, e.g. 0.05")
	between("engagement_decline.baseline_half_life_days", g.BaselineHalfLifeDays, 7, 3650, "the baseline's half-life, e.g. 60")
	between("engagement_decline.alt_ratio", g.AltRatio, 0.01, 0.9, "the fallen rate the sequential test looks for, as a share of the baseline, e.g. 0.2")
	between("engagement_decline.baseline_margin_se", g.BaselineMarginSE, 0, 5, "standard errors taken off the baseline before the sequential test, e.g. 0.5 (0 trusts the baseline as measured)")
	between("engagement_decline.max_baseline", g.MaxBaseline, 0.05, 0.99, "the highest open rate the sequential test assumes, e.g. 0.6")
	between("engagement_decline.cusum_threshold", g.CUSUMThreshold, 1, 20, "the evidence in nats before engagement counts as declined, e.g. 8 (lower detects sooner and alarms more often)")

	between("channel.active_days", c.Channel.ActiveDays, 1, 3650, "how long a lost channel counts towards risk, e.g. 30")

	p := &c.Support
	if p.Tickets30d < 1 {
		bad("support_friction.tickets_30d", "is %d, must be >= 1: tickets in 30 days that fire, e.g. 3", p.Tickets30d)
	}
	if p.SLA < time.Hour {
		bad("support_friction.sla", "is %v, must be >= 1h: how long a ticket may stay open, e.g. 72h", p.SLA)
	}
	for i, cat := range p.ComplaintCategories {
		if strings.TrimSpace(cat) == "" {
			bad(fmt.Sprintf("support_friction.complaint_categories[%d]", i), "is empty: remove it or name a ticket category, e.g. complaint")
		}
	}

	q := &c.Satisfaction
	if q.MaxCSAT < 1 || q.MaxCSAT > 4 {
		bad("low_satisfaction.max_csat", "is %d, must be between 1 and 4: the highest CSAT (1–5) that fires, e.g. 2", q.MaxCSAT)
	}
	if q.MaxNPS < 0 || q.MaxNPS > 9 {
		bad("low_satisfaction.max_nps", "is %d, must be between 0 and 9: the highest NPS (0–10) that fires, e.g. 6", q.MaxNPS)
	}
	between("low_satisfaction.active_days", q.ActiveDays, 1, 3650, "how long a low answer counts towards risk, e.g. 90")

	v := &c.Value
	between("value.lifetime_years", v.LifetimeYears, 0.1, 50, "the expected customer lifetime in CLV, e.g. 3")
	between("value.default_interval_days", v.DefaultIntervalDays, 1, 3650, "the shortest span over which the CLV's cap measures a customer's rate, e.g. 60")
	between("value.shrink_orders", v.ShrinkOrders, 0, 1000, "the weight in purchases of the task's average order value, e.g. 3 (0 uses the customer's own)")
	between("value.high_quantile", v.HighQuantile, 0.5, 0.999, "the CLV percentile where HIGH starts, e.g. 0.8")
	if !finite(v.LowQuantile) || v.LowQuantile < 0 || v.LowQuantile >= v.HighQuantile {
		bad("value.low_quantile", "is %v, must be >= 0 and below high_quantile (%v): the CLV percentile where MEDIUM starts, e.g. 0.5", v.LowQuantile, v.HighQuantile)
	}
	if v.MinCustomers < 1 {
		bad("value.min_customers", "is %d, must be >= 1: buying customers before tiers are assigned, e.g. 20", v.MinCustomers)
	}

	r := &c.Risk
	for _, reason := range event.Reasons {
		w, ok := r.Weights[reason]
		if !ok {
			bad("risk.weights."+string(reason), "is missing: give every reason a weight between 0 and 1, e.g. 0.4")
		} else if !finite(w) || w < 0 || w > 1 {
			bad("risk.weights."+string(reason), "is %v, must be between 0 and 1", w)
		}
	}
	for reason := range r.Weights {
		if !slices.Contains(event.Reasons, reason) {
			bad("risk.weights", "names unknown reason %q: use one of %v", reason, event.Reasons)
		}
	}
	between("risk.value_weight", r.ValueWeight, 0, 1, "how much customer value weighs in the priority, e.g. 0.6")
	between("risk.loyalty_max_risk", r.LoyaltyMaxRisk, 0, 1, "the risk below which HIGH-value customers get LOYALTY_REWARD, e.g. 0.35 (0 disables)")

	for _, reason := range event.Reasons {
		a, ok := c.Actions[reason]
		if !ok {
			bad("actions."+string(reason), "is missing: map every reason to one of %v", knownActions)
		} else if !slices.Contains(knownActions, a) {
			bad("actions."+string(reason), "is %q, must be one of %v", a, knownActions)
		}
	}
	for reason := range c.Actions {
		if !slices.Contains(event.Reasons, reason) {
			bad("actions", "names unknown reason %q: use one of %v", reason, event.Reasons)
		}
	}

	lc := &c.Lifecycle
	if lc.CooldownDays < 0 || lc.CooldownDays > 3650 {
		bad("lifecycle.cooldown_days", "is %d, must be between 0 and 3650: days before a reason may fire again, e.g. 30", lc.CooldownDays)
	}
	for reason, d := range lc.CooldownDaysByReason {
		if !slices.Contains(event.Reasons, reason) {
			bad("lifecycle.cooldown_days_by_reason", "names unknown reason %q: use one of %v", reason, event.Reasons)
		} else if d < 0 || d > 3650 {
			bad("lifecycle.cooldown_days_by_reason."+string(reason), "is %d, must be between 0 and 3650", d)
		}
	}
	if lc.PreemptMargin < 1 || lc.PreemptMargin > 100 {
		bad("lifecycle.preempt_margin", "is %d, must be between 1 and 100: priority points a trigger needs above the last one to fire inside its cooldown, e.g. 20 (100 disables pre-emption)", lc.PreemptMargin)
	}
	for _, reason := range lc.RecoverOn {
		if !slices.Contains(event.Reasons, reason) {
			bad("lifecycle.recover_on", "names unknown reason %q: use one of %v", reason, event.Reasons)
		}
	}
	if !slices.Contains(knownActions, lc.RecoveredAction) {
		bad("lifecycle.recovered_action", "is %q, must be one of %v", lc.RecoveredAction, knownActions)
	}
	between("lifecycle.holdout_share", lc.HoldoutShare, 0, maxHoldoutShare, "the share of WINBACK triggers held out as a control group, e.g. 0.1")
	for key, share := range lc.HoldoutShareBy {
		if _, _, ok := parseHoldoutKey(key); !ok {
			bad("lifecycle.holdout_share_by", "has key %q: use a reason (%v), a tier (HIGH, MEDIUM, LOW) or TIER/REASON, e.g. HIGH/SUPPORT_FRICTION", key, event.Reasons)
		}
		between("lifecycle.holdout_share_by."+key, share, 0, maxHoldoutShare, "the control share for these triggers, e.g. 0 for none")
	}
	if lc.MaxTriggersPerCustomer < 1 || lc.MaxTriggersPerCustomer > maxBudget {
		bad("lifecycle.max_triggers_per_customer", "is %d, must be between 1 and %d: WINBACK triggers a customer may get within budget_days, e.g. 1", lc.MaxTriggersPerCustomer, maxBudget)
	}
	if lc.BudgetDays < 0 || lc.BudgetDays > 365 {
		bad("lifecycle.budget_days", "is %d, must be between 0 and 365: the contact budget's window in days, e.g. 14 (0 turns the budget off)", lc.BudgetDays)
	}
	return errors.Join(errs...)
}

// params are the validated config in the engine's units.
type params struct {
	cfg          Config
	weights      [nReasons]float64
	actions      [nReasons]event.Action
	cooldown     [nReasons]int32 // days
	recoverOn    uint8
	lateness     int64 // ms
	sla          int64 // ms
	minInterval  int64 // ms
	complaint    []string
	channelDays  int32
	satisfyDays  int32
	halfLife     float64
	preempt      int
	maxOrderDays int
	// holdout[tier][reason] is the control share in 1/2^32 (see holdout.go).
	holdout    [tierHigh + 1][nReasons]uint64
	budgetN    int   // 0: no budget
	budgetDays int32 // the budget's window
}

func newParams(c Config) params {
	p := params{
		cfg:          c,
		lateness:     c.AllowedLateness.Milliseconds(),
		sla:          c.Support.SLA.Milliseconds(),
		minInterval:  int64(c.Lapse.MinIntervalHours * 3_600_000),
		channelDays:  int32(math.Ceil(c.Channel.ActiveDays)),
		satisfyDays:  int32(math.Ceil(c.Satisfaction.ActiveDays)),
		halfLife:     c.Engagement.BaselineHalfLifeDays,
		preempt:      c.Lifecycle.PreemptMargin,
		maxOrderDays: c.MaxOrderDays,
	}
	for i, r := range event.Reasons {
		p.weights[i] = c.Risk.Weights[r]
		p.actions[i] = c.Actions[r]
		p.cooldown[i] = int32(c.Lifecycle.CooldownDays)
		if d, ok := c.Lifecycle.CooldownDaysByReason[r]; ok {
			p.cooldown[i] = int32(d)
		}
		if slices.Contains(c.Lifecycle.RecoverOn, r) {
			p.recoverOn |= 1 << i
		}
	}
	p.holdout = holdoutShares(&c.Lifecycle)
	if c.Lifecycle.BudgetDays > 0 {
		p.budgetN, p.budgetDays = c.Lifecycle.MaxTriggersPerCustomer, int32(c.Lifecycle.BudgetDays)
	}
	for _, cat := range c.Support.ComplaintCategories {
		p.complaint = append(p.complaint, strings.ToLower(strings.TrimSpace(cat)))
	}
	return p
}
