// Package lapse is winback's signal engine: one Engine per task (partition
// number) keeps every customer's windows and baselines (package window),
// detects lapse signals, scores value, risk and priority, recommends an
// action, and runs the trigger lifecycle: deterministic ids, cooldowns,
// pre-emption and recovery. It also encodes the per-customer snapshots and
// the task meta written to the changelog, and holds the backtest report.
//
// The package is pure: no goroutines, no I/O, no clock. Event time comes
// from the events, wall time from the caller (now), and the same input gives
// the same triggers, ids, versions and snapshots whatever the batch
// boundaries or the cadence of Advance.
//
// TakeDirty hands out the customers changed since its last call, whose
// Aggregate rows go to ClickHouse. With KeepDays the engine also keeps, for
// TakeClosedDays, the end-of-day row of a customer whose next change falls
// on a later event-time day before TakeDirty took it, so that ClickHouse's
// customer_daily has one row per customer and changed day whether the input
// came live or as a backfill of months per batch (days.go).
//
// Customers leave through Erase (an erasure request) and, with SetTTL,
// eviction after that much event time without a change; TakeGone hands out
// the evicted ones' last rows. Their slots are refilled at once and the
// engine's memory shrinks with its customers (forget.go).
//
// # Signals
//
// docs/signals.md describes each signal for analysts. In short:
//
//   - PURCHASE_LAPSE fires on silence, from a timer, when the task watermark
//     passes last order + max(k × usual interval, usual + m × spread),
//     bounded by [min_gap_days, max_gap_days]. The usual interval is the
//     median of the last 7 intervals once the customer has min_orders
//     purchase occasions (orders at least min_interval_hours apart), and
//     otherwise the task's cohort median, floored at cohort_min_days and at
//     the customer's longest interval so far (evidence baseline_cohort = 1).
//   - SPEND_DECLINE: still buying (min_recent_orders in 90 days, not past
//     the lapse due) with 90-day spend down more than min_drop against the
//     90 days before, which held min_prev_orders, and spend per order down
//     more than min_order_value_drop, at two orders in a row (a new
//     decline must have held at the previous order); judged at orders and
//     timers.
//   - ENGAGEMENT_DECLINE: a sequential test (cusum.go): Page's CUSUM of the
//     log-likelihood ratio "open rate fell to alt_ratio × p0" against "is
//     p0", per delivered e-mail, has reached cusum_threshold nats, where
//     p0 is the customer's decayed baseline (which excludes the current 30
//     days) less baseline_margin_se standard errors, capped at
//     max_baseline; and the 30-day open rate is below max_ratio of the
//     baseline. At most n·e^−threshold false alarms a year for n e-mails
//     (docs/signals.md derives the budget).
//   - EMAIL_UNSUBSCRIBED (UNSUBSCRIBED, COMPLAINED) and EMAIL_BOUNCED (any
//     bounce is hard): the channel is lost.
//   - SUPPORT_FRICTION: tickets_30d tickets opened or reopened in 30 days, a
//     reopen, a complaint (a ticket whose category is in
//     complaint_categories, or URGENT if urgent_is_complaint), or a ticket
//     open past the SLA (a timer).
//   - LOW_SATISFACTION: a CSAT at or below max_csat or an NPS at or below
//     max_nps.
//
// # Lifecycle
//
// A trigger's id is TriggerID(customer, kind, primary reason, episode): the
// episode is the last order before the silence for PURCHASE_LAPSE and the
// event time at which the condition fired otherwise (with the priority, for
// a trigger that pre-empts its cooldown: preemptEpisode), so a replay gives
// the same ids and two triggers never share one. Reasons due together make
// one trigger per recommended action.
// A reason does not fire again within its cooldown (event time) unless the
// new trigger's priority is preempt_margin points higher; a lapse, spend or
// engagement decline or friction held back is looked at again when the
// cooldown ends. A trigger with a reason in recover_on opens an episode;
// the customer's next order closes it with a RECOVERED trigger. Late events
// are counted but never re-fire a trigger already sent; repeated event ids
// (the last 8 per customer) are ignored.
//
// A share of WINBACK triggers is CONTROL (the holdout, holdout.go): a hash
// of customer and episode below the share for the trigger's reason and
// tier; it keeps the lifecycle, and its RECOVERED trigger is CONTROL too.
// The contact budget (budget.go) lets a customer get at most
// max_triggers_per_customer WINBACK triggers within budget_days of each
// other: what it blocks waits on the customer's timer and goes out, merged
// into one trigger, when the budget frees, unless the customer orders
// first. Unsubscribed or bounced customers get CHANNEL_SWITCH instead of
// an e-mail action.
//
// # What depends on what
//
// A customer's state depends on its own events, the watermark at each of
// them, and two task-wide figures: the cohort interval (for customers
// without a rhythm) and the value percentile (tier, priority). Both come
// from sketches that are not snapshotted but rebuilt from the customers on
// restore, so they always agree with them. Trigger times and aggregates are
// in event time; only EmittedAt and source idleness use the wall clock.
//
// # Memory
//
// About 400 bytes of heap per customer with half a year of history (see
// BenchmarkMemoryPerCustomer): a 272-byte Customer in 256-customer slabs,
// its order days as a delta-encoded string, ids packed back to back, an
// open-addressing index of 8-byte cells and a pointer-free timer heap.
//
// # Timers and the watermark
//
// Each customer has at most one timer (the earliest of its lapse due, an
// open ticket's SLA, the end of a cooldown holding a reason back, and the
// day the contact budget frees for what it holds) in a
// pointer-free heap. Apply fires the timers that its event's watermark move
// makes due, after applying the event; Advance fires those that idle
// sources make due.
//
// # Metrics
//
// The package exports no metrics itself; Engine.Stats returns the counters
// the runner exports (events, duplicates, late events, triggers by reason,
// recoveries, suppressed and pre-empted reasons, timers fired, control
// triggers, and what the contact budget held, delayed, merged and dropped).
package lapse
