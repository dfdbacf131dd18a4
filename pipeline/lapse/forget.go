package lapse

import (
	"strings"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// Customers leave an engine in two ways: Erase (an erasure request, GDPR
// or CCPA) and eviction (state.ttl_days of event time without a change,
// SetTTL). Either way the customer's slot is refilled at once by the
// customer in the last slot, so that the slots stay dense and the chunks,
// the index, the timer heap and the id store can shrink with the number of
// customers: an engine whose set of active customers is flat keeps a flat
// heap, however many customers come and go.
//
// A customer that comes back after it left starts as a new customer
// (version 1, no history).

// Gone is a customer evicted by the TTL, as TakeGone hands it out: the
// changelog gets a tombstone for ID and ClickHouse the Aggregate, the
// customer's last state marked Evicted, with version 0. The sink deletes
// the customer's earlier rows before it writes this one, and a customer
// seen again after its eviction starts at version 1, so its new rows
// replace the evicted one (sinks/clickhouse).
type Gone struct {
	ID        string
	Aggregate event.Aggregate
}

// SetTTL makes the engine evict a customer when the watermark passes the
// end of the (UTC) day of its last change (an event applied or a timer
// fired) plus ttl, rounded up to whole days; 0 (the default) keeps
// customers forever. Eviction runs on event time, from the customer's
// timer, so a replay evicts the same customers at the same point; being
// a day boundary, it moves the timer at most once per day of activity.
// Call it once, before the first event or restore.
func (e *Engine) SetTTL(ttl time.Duration) {
	days := (max(ttl.Milliseconds(), 0) + window.MsPerDay - 1) / window.MsPerDay
	e.ttl = days * window.MsPerDay
}

// TTL returns what SetTTL set.
func (e *Engine) TTL() time.Duration { return time.Duration(e.ttl) * time.Millisecond }

// Erase removes customer id from the engine now: its state, its timer,
// its cells in the task sketches, its end-of-day rows not yet taken and an
// eviction not yet taken. It reports whether the engine held the customer.
// The next event for id starts a new customer.
func (e *Engine) Erase(id string) bool {
	e.days.drop(id)
	e.gone = dropGone(e.gone, id)
	slot, ok := e.ix.find(e, id, e.ix.hash(id))
	if !ok {
		return false
	}
	e.remove(slot)
	e.stats.Erased++
	return true
}

// Forget removes customer id without counting an erasure: a changelog
// tombstone read on restore.
func (e *Engine) Forget(id string) {
	if slot, ok := e.ix.find(e, id, e.ix.hash(id)); ok {
		e.remove(slot)
	}
}

// TakeGone calls fn for every customer evicted since the last call, in
// the order they were evicted, then forgets them. Write a gone customer's
// changelog tombstone before TakeDirty's records of the same transaction:
// an id evicted and seen again is a new customer there.
func (e *Engine) TakeGone(fn func(g *Gone)) {
	for i := range e.gone {
		fn(&e.gone[i])
	}
	clear(e.gone)
	e.gone = e.gone[:0]
	if cap(e.gone) > 1024 {
		e.gone = nil // a mass eviction's rows are not kept for the next
	}
}

func dropGone(gone []Gone, id string) []Gone {
	out := gone[:0]
	for _, g := range gone {
		if g.ID != id {
			out = append(out, g)
		}
	}
	clear(gone[len(out):])
	return out
}

// drop forgets the end-of-day rows kept for id.
func (d *dayRows) drop(id string) {
	w := 0
	for i := range d.n {
		if a := d.row(i); a.CustomerID != id {
			if w != i {
				*d.row(w) = *a
			}
			w++
		}
	}
	for i := w; i < d.n; i++ {
		*d.row(i) = event.Aggregate{}
	}
	d.n = w
}

// evictAt returns when c is to be evicted: the end of the day of its last
// change plus the TTL (SetTTL must be on).
func (e *Engine) evictAt(c *Customer) int64 {
	return (int64(window.Day(c.lastChange))+1)*window.MsPerDay + e.ttl
}

// expired reports whether a timer of c due at due is its eviction.
func (e *Engine) expired(c *Customer, due int64) bool {
	return e.ttl > 0 && due >= e.evictAt(c)
}

// evict queues c for eviction at the end of the current round of timers
// (advanceTo holds pointers to the customers due with it).
func (e *Engine) evict(c *Customer) {
	a := c.Aggregate(e)
	a.Version = 0
	a.Evicted = true
	a.CustomerID = strings.Clone(a.CustomerID) // the id store may be rebuilt
	e.gone = append(e.gone, Gone{ID: a.CustomerID, Aggregate: a})
	e.evicting = append(e.evicting, c.slot)
	e.days.evicted(a.CustomerID)
}

// evictQueued removes the customers evict queued. Removing one moves
// another into its slot, so the slots still queued are taken from the
// customers' ids.
func (e *Engine) evictQueued() {
	if len(e.evicting) == 0 {
		return
	}
	ids := make([]string, len(e.evicting))
	for i, slot := range e.evicting {
		ids[i] = e.at(slot).ID()
	}
	e.evicting = e.evicting[:0]
	for _, id := range ids {
		if slot, ok := e.ix.find(e, id, e.ix.hash(id)); ok {
			e.remove(slot)
			e.stats.Evicted++
		}
	}
}

// remove takes the customer in slot out of the engine and moves the
// customer in the last slot into it.
func (e *Engine) remove(slot uint32) {
	c := e.at(slot)
	if e.undo.on {
		e.keepLeaving(c)
	}
	e.unsketch(c)
	e.timers.Remove(slot)
	e.ix.remove(e.ix.hash(c.ID()), slot)
	e.ids.release(c.idLen)
	last := e.n - 1
	if slot != last {
		m := e.at(last)
		h := e.ix.hash(m.ID())
		e.ix.move(h, last, slot)
		due, armed := e.timers.Due(last)
		e.timers.Remove(last)
		*c = *m
		c.slot = slot
		if armed {
			e.timers.Set(slot, due)
		}
		if c.flags&flagDirty != 0 {
			// TakeDirty skips its entry under the old slot (past
			// the end, or a later customer's: read once by its flag).
			e.dirty = append(e.dirty, slot)
		}
		c = m
	}
	*c = Customer{}
	e.n = last
	e.shrink()
}

// shrink gives memory back once the customers use less than half of it:
// trailing chunks past a spare one, the index, the timer heap and the
// id store.
func (e *Engine) shrink() {
	for len(e.chunks) > 1 && int(e.n) <= (len(e.chunks)-2)<<chunkBits {
		e.chunks[len(e.chunks)-1] = nil
		e.chunks = e.chunks[:len(e.chunks)-1]
	}
	e.ix.shrink()
	e.timers.Shrink(int(e.n))
	if e.ids.wasteful() {
		var ids idStore
		for slot := uint32(0); slot < e.n; slot++ {
			c := e.at(slot)
			c.idRef, c.idLen = ids.add(c.ID())
		}
		e.ids = ids
	}
}
