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
	on bool
	// The rows kept, n of them, in blocks of dayBlock: a backlog that
	// keeps hundreds of thousands of rows in one batch grows no large
	// array by doubling (copying and zeroing it each time), and the
	// blocks beyond keepBlocks are let go once taken.
	blocks [][]event.Aggregate
	n      int
	// gone maps a customer evicted since the last TakeClosedDays to the
	// number of rows kept before its eviction: those belong to the
	// evicted customer, whose rows the evicted row replaces (forget.go).
	gone map[string]int
	// unkept counts events on an earlier day than their customer's last
	// change whose day's row could not be written again (lateDay).
	unkept uint64
}

// evicted notes that customer id left after the rows kept so far.
func (d *dayRows) evicted(id string) {
	if !d.on {
		return
	}
	if d.gone == nil {
		d.gone = map[string]int{}
	}
	d.gone[id] = d.n
}

// Rows per block, and the blocks kept for the next batch once taken.
const (
	dayBlock   = 512
	keepBlocks = 32
)

// add returns a place for the next row.
func (d *dayRows) add() *event.Aggregate {
	b := d.n / dayBlock
	if b == len(d.blocks) {
		d.blocks = append(d.blocks, make([]event.Aggregate, dayBlock))
	}
	d.n++
	return &d.blocks[b][(d.n-1)%dayBlock]
}

// row returns the i-th row kept.
func (d *dayRows) row(i int) *event.Aggregate { return &d.blocks[i/dayBlock][i%dayBlock] }

// reset forgets the rows kept.
func (d *dayRows) reset() {
	for b := 0; b*dayBlock < d.n; b++ {
		clear(d.blocks[b][:min(dayBlock, d.n-b*dayBlock)])
	}
	if len(d.blocks) > keepBlocks {
		clear(d.blocks[keepBlocks:])
		d.blocks = d.blocks[:keepBlocks]
	}
	d.n = 0
	clear(d.gone)
}

// lateDay runs after an event at time t on an earlier event-time day than
// c's last change has been applied (the customer's events came out of
// order: one input ran ahead of another, or a producer was late). The
// rows of c's later days are written already or to come, and none of them
// is t's day, so that day's row is written again, over the one written
// before (if any), with a version above it and below c's next row: it
// holds the day's net orders and spend as the order window now has them
// (DayOrders, DaySpend), a last order on the day for a placed order, and
// c's current figures otherwise. The retention and KPI views read a day's
// orders from its own row (migration 061), so rows of later days written
// before the late event need no correction.
//
// The window keeps a day exactly for window.Horizon days behind c's last
// change, and, once c has more order days than max_order_days, only the
// last 30 days unmerged: an older day's row is left alone and the event
// counted (Stats.LateDaysUnkept); its orders still count in the totals.
func (d *dayRows) lateDay(e *Engine, c *Customer, ev *event.Event) {
	day, head := window.Day(ev.Time), window.Day(c.lastChange)
	if !d.on || day >= head {
		return
	}
	limit := min(max(e.p.maxOrderDays, window.MinOrderEntries), window.MaxOrderEntries)
	if day <= head-window.Horizon || (c.ordWin.Len() >= limit && day <= head-30) {
		d.unkept++
		return
	}
	a := d.add()
	*a = c.Aggregate(e)
	a.AsOf = ev.Time
	n, cents := c.ordWin.On(day)
	a.DayOrders, a.DaySpend = n, float64(cents)/100
	if ev.Kind == event.KindOrder && ev.OrderType == event.OrderPlaced {
		a.LastOrderAt = ev.Time
	}
	c.version++ // c's next row supersedes this one in customer_aggregates
}

// closeDay runs before c changes at event time t.
func (d *dayRows) closeDay(e *Engine, c *Customer, t int64) {
	if d.on && c.flags&flagDirty != 0 && window.Day(t) > window.Day(c.lastChange) {
		*d.add() = c.Aggregate(e)
	}
}

// KeepDays makes the engine keep an end-of-day aggregate for every
// customer that changes on a later event-time day than its last change
// not yet taken by TakeDirty; TakeClosedDays hands them out. Call it once,
// before the first event, on engines whose aggregates go to ClickHouse.
// Without it (the backtest, tests) nothing is kept.
func (e *Engine) KeepDays() { e.days.on = true }

// ClosedDays is how many end-of-day rows are kept (an upper bound on what
// the next TakeClosedDays hands out: the rows of customers evicted since
// are left out), so that a caller can make room for them at once.
func (e *Engine) ClosedDays() int { return e.days.n }

// TakeClosedDays calls fn for every end-of-day aggregate kept since the
// last call, in the order they were kept, then forgets them. Write them
// with TakeDirty's, in the same transaction: each has a lower version than
// the customer's current row, and the day of its AsOf is earlier.
//
// The rows of a customer evicted afterwards (TakeGone) are left out: the
// evicted row stands for it, and ClickHouse must hold no later version of
// the evicted customer than that row.
func (e *Engine) TakeClosedDays(fn func(a *event.Aggregate)) {
	d := &e.days
	for i := range d.n {
		a := d.row(i)
		if at, ok := d.gone[a.CustomerID]; ok && i < at {
			continue
		}
		fn(a)
	}
	d.reset()
}
