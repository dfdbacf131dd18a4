package gen

import "github.com/winback/winback/pipeline/event"

// Archetype is a kind of customer behaviour the generator plants.
type Archetype string

// The archetypes. The package doc describes each one and the signals it
// should (and should not) raise.
const (
	SteadyWeekly    Archetype = "steady_weekly"
	SteadyBiweekly  Archetype = "steady_biweekly"
	SteadyMonthly   Archetype = "steady_monthly"
	Seasonal        Archetype = "seasonal"
	Lapser          Archetype = "lapser"
	EmailDisengager Archetype = "email_disengager"
	Unsubscriber    Archetype = "unsubscriber"
	Bouncer         Archetype = "bouncer"
	SupportFriction Archetype = "support_friction"
	LowSatisfaction Archetype = "low_satisfaction"
	SpendDecliner   Archetype = "spend_decliner"
	Returner        Archetype = "returner"
	NewCustomer     Archetype = "new_customer"
	OneTimeBuyer    Archetype = "one_time_buyer"
)

var archetypes = []Archetype{
	SteadyWeekly, SteadyBiweekly, SteadyMonthly, Seasonal, Lapser,
	EmailDisengager, Unsubscriber, Bouncer, SupportFriction, LowSatisfaction,
	SpendDecliner, Returner, NewCustomer, OneTimeBuyer,
}

// Archetypes lists every archetype in a fixed order.
func Archetypes() []Archetype { return append([]Archetype(nil), archetypes...) }

func (a Archetype) valid() bool {
	for _, b := range archetypes {
		if a == b {
			return true
		}
	}
	return false
}

// Steady reports whether a is one of the steady buyers, who must never get
// a trigger.
func (a Archetype) Steady() bool {
	return a == SteadyWeekly || a == SteadyBiweekly || a == SteadyMonthly
}

// Truth is the ground truth planted for one customer.
type Truth struct {
	CustomerID string
	Archetype  Archetype
	// Expect lists the triggers a correct engine must emit for this
	// customer, with their time bounds.
	Expect []ExpectedSignal
	// Allow lists reasons that a correct engine may or may not raise for
	// this customer (side effects of the planted behaviour, or behaviour
	// the documented thresholds leave ambiguous). A trigger with one of
	// them is neither a true nor a false positive.
	Allow []event.Reason
	// MustNotTrigger is set for steady buyers: any trigger for them is an
	// error.
	MustNotTrigger bool
	// LapseStart is the event time (Unix ms) of the last order before a
	// planted silence, for lapsers and returners; 0 if none. No order
	// follows it until ReturnAt (or ever, for lapsers).
	LapseStart int64
	// ReturnAt is the event time (Unix ms) of a returner's first order
	// after the silence; 0 if none.
	ReturnAt int64
	// Settled is the event time (Unix ms) from which a correct engine
	// knows the customer's rhythm: their purchase_lapse.min_orders-th
	// order, or the end of the data if they never place that many. Before
	// it an engine can only judge a silence against the cohort's interval,
	// so a PURCHASE_LAPSE (and the RECOVERED that closes it) before
	// Settled is the cohort's call, not the customer's, and AllowsAt
	// allows it. New customers are planted so that no silence of theirs
	// reaches twice even a weekly cohort interval: their Settled is their
	// first order. 0 for customers without orders.
	Settled int64
	// IntervalDays is the planted usual interval between orders, in days;
	// 0 for archetypes without a rhythm.
	IntervalDays float64
	// Orders is the number of PLACED orders generated for the customer.
	Orders int
}

// ExpectedSignal is one trigger a correct engine must emit.
type ExpectedSignal struct {
	// Kind is WINBACK, or RECOVERED for a returner coming back.
	Kind event.TriggerKind
	// Reason is the lapse reason (for RECOVERED, the reason recovered
	// from).
	Reason event.Reason
	// From is the earliest event time (Unix ms) at which the signal can
	// legitimately hold; a trigger with AsOf before it is early.
	From int64
	// By is the event time (Unix ms) by which the signal holds with a
	// comfortable margin under the default thresholds: a correct engine
	// has emitted the trigger once its watermark passes By.
	By int64
}

// Expects reports whether t expects a WINBACK trigger with reason r.
func (t *Truth) Expects(r event.Reason) bool {
	for _, e := range t.Expect {
		if e.Kind == event.TriggerWinback && e.Reason == r {
			return true
		}
	}
	return false
}

// Allows reports whether a trigger with reason r is acceptable for t:
// expected or allowed.
func (t *Truth) Allows(r event.Reason) bool {
	if t.Expects(r) {
		return true
	}
	for _, a := range t.Allow {
		if a == r {
			return true
		}
	}
	return false
}

// AllowsAt reports whether a WINBACK trigger with reason r as of event
// time at is acceptable for t: expected, allowed, or a PURCHASE_LAPSE
// before the customer's rhythm is known (before Settled).
func (t *Truth) AllowsAt(r event.Reason, at int64) bool {
	if t.Allows(r) {
		return true
	}
	return r == event.ReasonPurchaseLapse && at < t.Settled
}

// ExpectsRecovery reports whether t expects a RECOVERED trigger.
func (t *Truth) ExpectsRecovery() bool {
	for _, e := range t.Expect {
		if e.Kind == event.TriggerRecovered {
			return true
		}
	}
	return false
}
