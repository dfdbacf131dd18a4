package event

// TriggerKind is WinbackTrigger.kind.
type TriggerKind string

const (
	TriggerWinback   TriggerKind = "WINBACK"
	TriggerRecovered TriggerKind = "RECOVERED"
)

// Reason is a lapse-signal reason code.
type Reason string

const (
	ReasonPurchaseLapse     Reason = "PURCHASE_LAPSE"
	ReasonSpendDecline      Reason = "SPEND_DECLINE"
	ReasonEngagementDecline Reason = "ENGAGEMENT_DECLINE"
	ReasonEmailUnsubscribed Reason = "EMAIL_UNSUBSCRIBED"
	ReasonEmailBounced      Reason = "EMAIL_BOUNCED"
	ReasonSupportFriction   Reason = "SUPPORT_FRICTION"
	ReasonLowSatisfaction   Reason = "LOW_SATISFACTION"
)

// Reasons lists every reason code in contract order.
var Reasons = []Reason{
	ReasonPurchaseLapse, ReasonSpendDecline, ReasonEngagementDecline,
	ReasonEmailUnsubscribed, ReasonEmailBounced, ReasonSupportFriction, ReasonLowSatisfaction,
}

// Tier is a customer's value tier.
type Tier string

const (
	TierHigh   Tier = "HIGH"
	TierMedium Tier = "MEDIUM"
	TierLow    Tier = "LOW"
)

// Action is the action recommended to marketing automation.
type Action string

const (
	ActionWinbackOffer    Action = "WINBACK_OFFER"
	ActionServiceRecovery Action = "SERVICE_RECOVERY"
	ActionReengagement    Action = "REENGAGEMENT_CAMPAIGN"
	ActionChannelSwitch   Action = "CHANNEL_SWITCH"
	ActionLoyaltyReward   Action = "LOYALTY_REWARD"
)

// Treatment is a WINBACK trigger's experiment arm: TREATED triggers are
// acted on, CONTROL ones (the holdout group) are recorded and left alone,
// so that comparing the two measures what the campaigns add. A RECOVERED
// trigger carries its original trigger's treatment.
type Treatment string

const (
	TreatmentTreated Treatment = "TREATED"
	TreatmentControl Treatment = "CONTROL"
)

// Trigger is one record on the win-back trigger topic (WinbackTrigger).
type Trigger struct {
	TriggerID         string // deterministic: the same on every replay
	CustomerID        string
	Kind              TriggerKind
	Reasons           []Reason
	PrimaryReason     Reason
	RiskScore         float64 // 0–1
	ValueTier         Tier
	Priority          int32 // 1–100, higher is more urgent
	RecommendedAction Action
	Evidence          map[string]float64
	// OriginalTriggerID is set on RECOVERED triggers: the WINBACK trigger
	// the customer recovered from.
	OriginalTriggerID string
	AsOf              int64 // event time at which it became due, Unix ms
	EmittedAt         int64 // wall time at which winback emitted it, Unix ms
	// PLapse is the probability of no order within the purchase-lapse
	// horizon as of AsOf; nil for a customer without an order (and in
	// triggers written before the field existed).
	PLapse *float64
	// Treatment is TREATED or CONTROL (the holdout group: record the
	// trigger, take no action). Empty reads as TREATED (triggers written
	// before the field existed).
	Treatment Treatment
}

// Arm returns t's treatment, TREATED when empty.
func (t *Trigger) Arm() Treatment {
	if t.Treatment == "" {
		return TreatmentTreated
	}
	return t.Treatment
}
