package lapse

import (
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// dayRows keeps the end-of-day aggregates of customers whose change moved
// on to a later event-time day before TakeDirty took the earlier one.
//
// TakeDirty gives one aggregate per changed customer per call: the latest.
// When a call covers several event-time days of a customer (a backfill
// reads months in one batch), the states at the end of the earlier days
// would never be written, and ClickHouse's customer_daily (one row per
// customer and day, the day's latest version) would miss those days, so
// that every monthly and weekly view built on it depends on how fast the
// input came. With KeepDays, the engine keeps the aggregate of such a
// customer as it stands just before its first change on a later day: the
// state at the end of its previous day, with that day's last version.
// Together with TakeDirty's rows they are exactly the rows that a run
// with a TakeDirty after every event gives, reduced to the latest version
// per customer and day, whatever the batching.
type dayRows struct {
	on   bool
	rows []event.Aggregate
	// gone maps a customer evicted since the last TakeClosedDays to the
	// number of rows kept before its eviction: those belong to the
	// evicted customer, whose rows the evicted row replaces (forget.go).
	gone map[string]int
}

// evicted notes that customer id left after the rows kept so far.
func (d *dayRows) evicted(id string) {
	if !d.on {
		return
	}
	if d.gone == nil {
		d.gone = map[string]int{}
	}
	d.gone[id] = len(d.rows)
}

// closeDay runs before c changes at event time t.
func (d *dayRows) closeDay(e *Engine, c *Customer, t int64) {
	if d.on && c.flags&flagDirty != 0 && window.Day(t) > window.Day(c.lastChange) {
		d.rows = append(d.rows, c.Aggregate(e))
	}
}

// KeepDays makes the engine keep an end-of-day aggregate for every
// customer that changes on a later event-time day than its last change
// not yet taken by TakeDirty; TakeClosedDays hands them out. Call it once,
// before the first event, on engines whose aggregates go to ClickHouse.
// Without it (the backtest, tests) nothing is kept.
func (e *Engine) KeepDays() { e.days.on = true }

// TakeClosedDays calls fn for every end-of-day aggregate kept since the
// last call, in the order they were kept, then forgets them. Write them
// with TakeDirty's, in the same transaction: each has a lower version than
// the customer's current row, and the day of its AsOf is earlier.
//
// The rows of a customer evicted afterwards (TakeGone) are left out: the
// evicted row stands for it, and ClickHouse must hold no later version of
// the evicted customer than that row.
func (e *Engine) TakeClosedDays(fn func(a *event.Aggregate)) {
	for i := range e.days.rows {
		if at, ok := e.days.gone[e.days.rows[i].CustomerID]; ok && i < at {
			continue
		}
		fn(&e.days.rows[i])
	}
	clear(e.days.rows)
	e.days.rows = e.days.rows[:0]
	clear(e.days.gone)
}
