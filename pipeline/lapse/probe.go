package lapse

import (
	"unsafe"

	"github.com/winback/winback/pipeline/internal/prefetch"
)

// A Probe readies the CPU caches for an event that Apply will see soon.
// At 100k customers and more, a customer's state is rarely in cache, and
// Apply would meet a chain of misses one after another: the index cell,
// then the customer, then its order days, tickets and timer, each found
// through the one before. A runner that knows its next events calls
// Engine.Probe on an event a few places ahead of the one it applies, and
// again as the event comes closer: each call takes one step down the chain
// with a prefetch, and by the time the event is applied its state has
// arrived while earlier events were applied.
//
// Probes are hints. They change no state and need not be taken in full or
// at all; the zero Probe is ready for its first step.
type Probe struct {
	h    uint32
	slot uint32 // slot+1 once found; 0 = not (yet) known
	step uint8
}

// ProbeSteps is the number of useful calls of Probe per event.
const ProbeSteps = 4

// Probe takes p's next step for an event of the customer id: it hashes id
// and prefetches its index cell, then the customer, then the state held
// outside the customer (order days, support record, timer index), then
// what that points to (ticket events, the timer's due time).
func (e *Engine) Probe(p *Probe, id string) {
	switch p.step {
	case 0:
		p.h = e.ix.hash(id)
		prefetch.Addr(unsafe.Pointer(e.ix.cell(p.h)))
	case 1:
		slot, ok := e.ix.peek(p.h)
		if !ok {
			p.step = ProbeSteps // a new customer: nothing to load
			return
		}
		p.slot = slot + 1
		c := unsafe.Pointer(e.at(slot))
		for off := uintptr(0); off < unsafe.Sizeof(Customer{}); off += 64 {
			prefetch.Addr(unsafe.Add(c, off))
		}
	case 2:
		if p.slot == 0 || p.slot > e.n {
			return
		}
		c := e.at(p.slot - 1)
		c.ordWin.Prefetch()
		if c.sup != nil {
			prefetch.Addr(unsafe.Pointer(c.sup))
		}
		e.timers.Prefetch(c.slot)
	case 3:
		if p.slot == 0 || p.slot > e.n {
			return
		}
		c := e.at(p.slot - 1)
		if c.sup != nil {
			c.sup.Prefetch()
		}
		e.timers.PrefetchDue(c.slot)
	default:
		return
	}
	p.step++
}
