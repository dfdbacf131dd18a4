// Package window keeps compact per-customer rolling windows over event time,
// the personal baselines built on them, the task's event-time watermark and
// the timer heap that fires silence and SLA timers when the watermark passes
// them.
//
// Everything here is pure: no goroutines, no I/O, and time is an argument.
// Event times are Unix milliseconds in UTC; windows count whole UTC days
// ([Day]).
//
// # Precision
//
//   - [Orders] is a sparse list of (day, net order count, net cents) entries
//     for the last [Horizon] days. Its 7-, 30-, 90-day and previous-90-day
//     windows are exact to the day as long as the customer ordered on at most
//     the configured cap of distinct days (48 by default) within the
//     horizon. Beyond the cap the two closest entries older than 30 days are
//     merged into the later day, so the 7- and 30-day windows stay exact and
//     the 90-day boundaries may move a merged order by at most the gap
//     between the two merged days.
//   - [Emails] counts sent, delivered, opened and clicked e-mails in
//     [EmailBuckets] buckets of [EmailBucketDays] days: the "30-day" window
//     is the last 15 two-day buckets, so it covers the last 29 or 30 days
//     (exact to two days). Each counter saturates at 15 per bucket. Older
//     buckets fold into exponentially decayed baseline counts (half-life
//     configurable through a precomputed [Decay]), so the baseline never
//     includes the current window.
//   - [Intervals] keeps the last [MaxIntervals] inter-purchase intervals in
//     whole hours (up to 65535 h, about 7.5 years).
//   - [Support] keeps up to 32 ticket events of the last 90 days and up to 8
//     open tickets; both are exact within those caps.
//
// Late events are counted in the bucket of their own event time as long as
// that lies within [Horizon] days of the newest event of the same window; an
// e-mail older than the 30-day ring goes straight into the decayed baseline.
package window
