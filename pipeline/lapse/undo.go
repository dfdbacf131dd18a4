package lapse

import (
	"maps"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/event"
)

// The undo log lets a runner take back what an aborted transaction did to
// an engine without reading the changelog again (Checkpoint, Rollback).
//
// Before the first change of a customer after the checkpoint, the engine
// keeps the customer's snapshot (AppendSnapshot's bytes, with the due time
// its timer had) in an arena, or notes that the customer did not exist;
// a customer that leaves (Erase, Forget, an eviction) is kept the same way
// before it goes. A flag bit on the customer (flagUndo) says it is kept
// already, so the hot path pays one branch per change and one snapshot per
// customer per transaction. The engine's own state that a transaction may
// change is small and copied whole at the checkpoint: the meta (watermark
// and purchase model), the counters, the end-of-day rows and evictions not
// yet taken, and the customers marked for TakeDirty.
//
// A refit (or SetPurchaseModel) moves every customer's CLV cell and timer
// without keeping them: a rollback over one restores the model and has
// every customer repriced under it at the next Apply, Advance or Follow,
// which is what a restore from the changelog does (RestoreMeta). A
// transaction whose log outgrew SetUndoLimit cannot be rolled back
// (Rollback reports false): the runner then restores the task from the
// changelog, as it would without the log.

// undoEntry is one customer's state at the checkpoint: its snapshot is
// arena[off:end], or it did not exist (off < 0).
type undoEntry struct {
	id       string
	off, end int
}

// undoLog is an engine's undo log (see above).
type undoLog struct {
	armed    bool // Checkpoint ran: Rollback has a point to return to
	on       bool // changes are being kept (armed, not overflowed, not rolling back)
	overflow bool // the log outgrew limit: Rollback is impossible
	limit    int  // bytes of snapshots kept at most; 0: no bound
	arena    []byte
	entries  []undoEntry
	// removed holds the ids kept that left the engine since the
	// checkpoint: one that comes back is not "new" at the checkpoint.
	removed map[string]struct{}

	// The engine's own state at the checkpoint.
	meta                  []byte
	repriceDue, metaDirty bool
	model                 btyd.Params
	popAOV                float64
	refitAt, refitNext    int64
	stats                 counters
	days                  []event.Aggregate
	daysGone              map[string]int
	unkept                uint64
	gone                  []Gone
	dirty                 []string
}

// undoArenaKeep is the arena capacity kept from one transaction to the
// next; a larger one (a catch-up batch) is let go.
const undoArenaKeep = 4 << 20

// SetUndoLimit bounds the snapshot bytes the undo log keeps between two
// checkpoints (0: no bound). A transaction that touches more customers
// than fit cannot be rolled back: Rollback reports false.
func (e *Engine) SetUndoLimit(bytes int) { e.undo.limit = max(bytes, 0) }

// UndoBytes returns the snapshot bytes kept since the last checkpoint.
func (e *Engine) UndoBytes() int { return len(e.undo.arena) }

// Checkpoint makes the engine's current state the one Rollback returns
// to, and forgets the previous one: call it once the state is committed
// (after the commit that wrote the changed customers' snapshots, or a
// restore). Its cost is proportional to the customers kept since the last
// checkpoint, not to the engine's size. Until the first Checkpoint
// nothing is kept and Rollback reports false.
func (e *Engine) Checkpoint() {
	u := &e.undo
	e.unflagUndo()
	u.entries = u.entries[:0]
	if cap(u.arena) > undoArenaKeep {
		u.arena = nil
	}
	u.arena = u.arena[:0]
	clear(u.removed)

	u.meta = e.AppendMeta(u.meta[:0])
	u.repriceDue, u.metaDirty = e.repriceDue, e.metaDirty
	u.model, u.popAOV, u.refitAt, u.refitNext = e.model, e.popAOV, e.refitAt, e.refitNext
	tr := append(u.stats.triggers[:0], e.stats.triggers...)
	u.stats = e.stats
	u.stats.triggers = tr
	clear(u.days)
	u.days = u.days[:0]
	for i := range e.days.n {
		u.days = append(u.days, *e.days.row(i))
	}
	clear(u.daysGone)
	if len(e.days.gone) > 0 {
		if u.daysGone == nil {
			u.daysGone = map[string]int{}
		}
		maps.Copy(u.daysGone, e.days.gone)
	}
	u.unkept = e.days.unkept
	clear(u.gone)
	u.gone = append(u.gone[:0], e.gone...)
	clear(u.dirty)
	u.dirty = u.dirty[:0]
	var seen map[string]bool // a customer that moved slot is listed twice
	for _, slot := range e.dirty {
		if slot >= e.n {
			continue
		}
		if c := e.at(slot); c.flags&flagDirty != 0 {
			if seen == nil {
				seen = map[string]bool{}
			}
			if id := c.ID(); !seen[id] {
				seen[id] = true
				u.dirty = append(u.dirty, id)
			}
		}
	}
	u.armed, u.on, u.overflow = true, true, false
}

// Rollback returns the engine to its state at the last Checkpoint: the
// customers changed since get their snapshot back (a customer erased or
// evicted since comes back, one that is new leaves), and so do the meta,
// the counters, the rows and evictions not yet taken and the set of
// customers marked for TakeDirty. The sources' idle clocks restart, as
// after a restore. The checkpoint stays: a second Rollback returns to it
// again.
//
// Over a refit, every customer is repriced under the checkpoint's model
// at the next Apply, Advance or Follow, as after a restore.
//
// It reports false, changing nothing, when it cannot: no checkpoint yet,
// or the log outgrew SetUndoLimit. The caller then rebuilds the engine
// from the changelog.
func (e *Engine) Rollback() bool {
	u := &e.undo
	if !u.armed || u.overflow {
		return false
	}
	// A refit (or SetPurchaseModel) since the checkpoint repriced every
	// customer: they are repriced again under the checkpoint's model at
	// the next Apply, Advance or Follow, as after a restore.
	repriced := u.refitAt != e.refitAt || u.refitNext != e.refitNext || u.model != e.model || u.popAOV != e.popAOV
	u.on = false
	for i := len(u.entries) - 1; i >= 0; i-- {
		en := &u.entries[i]
		if en.off < 0 {
			e.Forget(en.id)
			continue
		}
		if err := e.RestoreCustomer(en.id, u.arena[en.off:en.end]); err != nil {
			// The engine's own bytes: a bug. Leave the engine to
			// the caller's restore.
			u.overflow = true
			return false
		}
	}
	// The customers marked for TakeDirty: those of the checkpoint.
	e.TakeDirty(func(*Customer) {})
	for _, id := range u.dirty {
		if c := e.Customer(id); c != nil {
			c.flags |= flagDirty
			e.dirty = append(e.dirty, c.slot)
		}
	}
	if err := e.RestoreMeta(u.meta); err != nil {
		u.overflow = true
		return false
	}
	e.repriceDue, e.metaDirty = u.repriceDue || repriced, u.metaDirty
	tr := append(e.stats.triggers[:0], u.stats.triggers...)
	e.stats = u.stats
	e.stats.triggers = tr
	e.days.reset()
	for i := range u.days {
		*e.days.add() = u.days[i]
	}
	if len(u.daysGone) > 0 {
		if e.days.gone == nil {
			e.days.gone = map[string]int{}
		}
		maps.Copy(e.days.gone, u.daysGone)
	}
	e.days.unkept = u.unkept
	clear(e.gone)
	e.gone = append(e.gone[:0], u.gone...)
	e.evicting = e.evicting[:0]

	e.unflagUndo()
	u.entries = u.entries[:0]
	u.arena = u.arena[:0]
	clear(u.removed)
	u.on = true
	return true
}

// unflagUndo clears flagUndo on the customers kept.
func (e *Engine) unflagUndo() {
	for i := range e.undo.entries {
		if c := e.Customer(e.undo.entries[i].id); c != nil {
			c.flags &^= flagUndo
		}
	}
}

// keep keeps c's state before its first change since the checkpoint, its
// timer due at due (0: none). Callers check e.undo.on and flagUndo first,
// so that the common case costs no call.
func (e *Engine) keep(c *Customer, due int64) {
	u := &e.undo
	c.flags |= flagUndo
	off := len(u.arena)
	u.arena = e.appendSnapshot(u.arena, c, due)
	u.entries = append(u.entries, undoEntry{id: c.ID(), off: off, end: len(u.arena)})
	if u.limit > 0 && len(u.arena) > u.limit {
		u.on, u.overflow = false, true
	}
}

// keepTimer is keep with c's armed timer.
func (e *Engine) keepTimer(c *Customer) {
	due, _ := e.timers.Due(c.slot)
	e.keep(c, due)
}

// keepNew notes that c, just created, did not exist at the checkpoint,
// unless it did and left since (removed).
func (e *Engine) keepNew(c *Customer, id string) {
	u := &e.undo
	c.flags |= flagUndo
	if _, ok := u.removed[id]; ok {
		return
	}
	u.entries = append(u.entries, undoEntry{id: c.ID(), off: -1})
}

// keepLeaving keeps c before it leaves the engine.
func (e *Engine) keepLeaving(c *Customer) {
	if c.flags&flagUndo == 0 {
		e.keepTimer(c)
	}
	if e.undo.removed == nil {
		e.undo.removed = map[string]struct{}{}
	}
	e.undo.removed[c.ID()] = struct{}{}
}
