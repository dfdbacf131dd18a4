package event

// Aggregate is the current figures of one customer, one row of the ClickHouse
// table customer_aggregates (and, per day, customer_daily). Version grows by
// one with every change to the customer's state, so that a row written again
// after a replay carries the same version and ReplacingMergeTree keeps one.
type Aggregate struct {
	CustomerID string
	Version    uint64
	AsOf       int64 // event time of the latest change, Unix ms

	FirstOrderAt int64 // Unix ms, 0 if none
	LastOrderAt  int64 // Unix ms, 0 if none
	OrdersTotal  uint32
	SpendTotal   float64 // net of refunds and cancellations
	// DayOrders and DaySpend are the net orders and net spend of the
	// order events on the UTC day of AsOf (customer_daily's own day), so
	// that a day's row holds that day's orders however late they came.
	DayOrders int32
	DaySpend  float64

	Orders7d, Orders30d, Orders90d, OrdersPrev90d uint32
	Spend7d, Spend30d, Spend90d, SpendPrev90d     float64

	UsualIntervalDays  float64 // 0 if unknown
	IntervalSpreadDays float64
	BaselineSource     string // "personal" or "cohort"

	EmailsDelivered30d, EmailsOpened30d, EmailsClicked30d, EmailsBounced90d uint32
	OpenRate30d, ClickRate30d, OpenRateBaseline, ClickRateBaseline          float64
	Unsubscribed, HardBounced                                               bool

	TicketsOpened30d, TicketsOpened90d, TicketsReopened90d, TicketsOpen, Complaints90d uint32
	LastCSAT                                                                           int8 // NoScore if none
	LastNPS                                                                            int8 // NoScore if none

	ValueTier Tier
	CLV       float64
	// PLapse is the probability of no order within the purchase-lapse
	// horizon (0 for a customer without a placed order).
	PLapse        float64
	RiskScore     float64
	ActiveReasons []Reason

	LastTriggerID     string
	LastTriggerReason Reason
	LastTriggerAt     int64 // Unix ms, 0 if none

	// Evicted marks the last row of a customer the state TTL evicted
	// (state.ttl_days without a change): the figures are its last state,
	// the version 0 (it replaces the customer's earlier rows, which the
	// sink deletes, and gives way to a new customer under the same id).
	Evicted bool
}

// DeadLetter describes one input record sent to the dead-letter topic.
type DeadLetter struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Reason    string // a stable reason code, e.g. "avro.unknown_schema_id"
	Detail    string // human-readable error text
	Size      int    // size of the original value in bytes
	Sample    []byte // the value's first bytes, capped
	At        int64  // wall time, Unix ms
}
