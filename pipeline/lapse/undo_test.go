package lapse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// engineState is everything Rollback promises to bring back, read without
// changing the engine: every customer's snapshot, the meta, the counters,
// the timers, and the customers marked for TakeDirty (in order).
type engineState struct {
	snaps  map[string][]byte
	meta   []byte
	stats  Stats
	timers int
	dirty  []string
	days   int
	gone   []string
}

func stateOf(e *Engine) engineState {
	s := engineState{snaps: map[string][]byte{}, meta: e.AppendMeta(nil), stats: e.Stats(),
		timers: e.PendingTimers(), days: e.ClosedDays()}
	e.Each(func(c *Customer) { s.snaps[c.ID()] = e.AppendSnapshot(nil, c) })
	seen := map[string]bool{}
	for _, slot := range e.dirty {
		if slot < e.n && e.at(slot).flags&flagDirty != 0 && !seen[e.at(slot).ID()] {
			seen[e.at(slot).ID()] = true
			s.dirty = append(s.dirty, e.at(slot).ID())
		}
	}
	for _, g := range e.gone {
		s.gone = append(s.gone, g.ID)
	}
	return s
}

func sameState(t *testing.T, what string, want, got engineState) {
	t.Helper()
	if len(want.snaps) != len(got.snaps) {
		t.Fatalf("%s: %d customers, want %d", what, len(got.snaps), len(want.snaps))
	}
	for id, w := range want.snaps {
		if g, ok := got.snaps[id]; !ok || !bytes.Equal(w, g) {
			t.Fatalf("%s: customer %s: snapshot differs (present %v)", what, id, ok)
		}
	}
	if !bytes.Equal(want.meta, got.meta) {
		t.Fatalf("%s: meta differs", what)
	}
	if !reflect.DeepEqual(want.stats, got.stats) {
		t.Fatalf("%s: stats differ:\n%+v\n%+v", what, want.stats, got.stats)
	}
	if want.timers != got.timers || want.days != got.days || !slices.Equal(want.dirty, got.dirty) || !slices.Equal(want.gone, got.gone) {
		t.Fatalf("%s: timers %d/%d, closed days %d/%d, dirty %v/%v, gone %v/%v", what,
			got.timers, want.timers, got.days, want.days, got.dirty, want.dirty, got.gone, want.gone)
	}
}

// undoDriver feeds an engine a stream the way a runner does, with random
// erasures and advances, the same way for the same seed.
type undoDriver struct {
	stream []srcEvent
	pcg    *rand.PCG // the source of r, saved and put back for a replay
	r      *rand.Rand
	trigs  []event.Trigger
}

func newUndoDriver(stream []srcEvent, seed uint64) *undoDriver {
	pcg := rand.NewPCG(seed, 11)
	return &undoDriver{stream: stream, pcg: pcg, r: rand.New(pcg)}
}

func (d *undoDriver) run(e *Engine, from, to int) {
	for i := from; i < to; i++ {
		ev := &d.stream[i]
		d.trigs, _, _ = e.Apply(d.trigs, ev.src, &ev.ev, wallAt(i))
		switch x := d.r.IntN(200); {
		case x == 0:
			e.Erase(ev.ev.CustomerID)
		case x < 4:
			d.trigs = e.Advance(d.trigs, wallAt(i))
		case x < 6:
			e.TakeDirty(func(*Customer) {})
			e.TakeClosedDays(func(*event.Aggregate) {})
			e.TakeGone(func(*Gone) {})
		}
	}
}

func undoConfig(pinned bool) Config {
	cfg := DefaultConfig()
	if pinned {
		cfg = pinnedConfig()
	}
	cfg.Model.RefitDays = 0
	return cfg
}

// TestRollbackProperty: for random streams and split points, (apply A,
// checkpoint, apply B, rollback) leaves the engine as (apply A) leaves it
// — every customer's snapshot, the meta, the counters, the timers, the
// dirty set — and applying B again afterwards gives the triggers and
// state that applying A then B once gives.
func TestRollbackProperty(t *testing.T) {
	changed := 0 // runs whose B changed the state: the rollback had work
	for seed := range uint64(16) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := undoConfig(seed%2 == 0)
			stream := genStream(100+seed, 60, 200, 0.02)
			r := rand.New(rand.NewPCG(seed, 7))
			a := r.IntN(len(stream))
			b := a + r.IntN(len(stream)-a+1)
			ttl := time.Duration(0)
			if seed%3 != 0 {
				ttl = time.Duration(20+r.IntN(40)) * 24 * time.Hour // evictions in B
			}
			mk := func() (*Engine, *undoDriver) {
				e := NewEngine(cfg, 3, wallAt(0))
				e.KeepDays()
				e.SetTTL(ttl)
				return e, newUndoDriver(stream, seed)
			}
			ref, dref := mk()
			dref.run(ref, 0, a)
			want := stateOf(ref)

			e, d := mk()
			d.run(e, 0, a)
			e.Checkpoint()
			saved := *d.pcg
			n := len(d.trigs)
			d.run(e, a, b)
			d.trigs = e.Advance(d.trigs, wallAt(b))
			if !reflect.DeepEqual(want, stateOf(e)) {
				changed++
			}
			if !e.Rollback() {
				t.Fatal("Rollback reported false")
			}
			sameState(t, fmt.Sprintf("A=%d B=%d after rollback", a, b), want, stateOf(e))

			// B again, as the replay after an abort does.
			*d.pcg = saved
			d.trigs = d.trigs[:n]
			d.run(e, a, b)
			dref.run(ref, a, b)
			d.trigs = e.Advance(d.trigs, wallAt(b))
			dref.trigs = ref.Advance(dref.trigs, wallAt(b))
			// TakeDirty's order follows the slots after a customer
			// left, and slots differ after a rollback as after a
			// restore: the replay's dirty set is compared as a set.
			w, g := stateOf(ref), stateOf(e)
			slices.Sort(w.dirty)
			slices.Sort(g.dirty)
			sameState(t, "replayed", w, g)
			sameResults(t, "replayed", runResult{triggers: dref.trigs}, runResult{triggers: d.trigs}, true)
		})
	}
	if changed < 12 {
		t.Fatalf("only %d of 16 runs changed the state before the rollback", changed)
	}
}

func TestRollbackCases(t *testing.T) {
	t0 := genStart.UnixMilli()
	tests := []struct {
		name string
		ttl  time.Duration
		b    func(e *Engine) // the transaction rolled back
	}{
		{"new customer leaves", 0, func(e *Engine) { e.Apply(nil, SourceOrders, ptr(orderAt("new", t0+2*day, "n1")), wallAt(1)) }},
		{"erased customer comes back", 0, func(e *Engine) { e.Erase("a") }},
		{"erased and seen again", 0, func(e *Engine) {
			e.Erase("a")
			e.Apply(nil, SourceOrders, ptr(orderAt("a", t0+3*day, "a9")), wallAt(1))
		}},
		{"forgotten", 0, func(e *Engine) { e.Forget("b") }},
		{"restored over", 0, func(e *Engine) {
			e.RestoreCustomer("a", e.AppendSnapshot(nil, e.Customer("b")))
		}},
		{"timers fired", 0, func(e *Engine) { e.Follow(nil, t0+400*day, wallAt(2)) }},
		{"evicted", 40 * 24 * time.Hour, func(e *Engine) { e.Follow(nil, t0+400*day, wallAt(2)) }},
		{"changed twice", 0, func(e *Engine) {
			e.Apply(nil, SourceOrders, ptr(orderAt("a", t0+20*day, "a2")), wallAt(1))
			e.Apply(nil, SourceOrders, ptr(orderAt("a", t0+40*day, "a3")), wallAt(1))
		}},
		{"nothing", 0, func(e *Engine) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(undoConfig(false), 3, wallAt(0))
			e.KeepDays()
			e.SetTTL(tt.ttl)
			for i, id := range []string{"a", "b", "c"} {
				e.Apply(nil, SourceOrders, ptr(orderAt(id, t0+int64(i)*3600_000, id+"1")), wallAt(0))
				e.Apply(nil, SourceOrders, ptr(orderAt(id, t0+10*day+int64(i)*3600_000, id+"2")), wallAt(0))
			}
			e.TakeDirty(func(*Customer) {})
			e.TakeClosedDays(func(*event.Aggregate) {})
			want := stateOf(e)
			e.Checkpoint()
			tt.b(e)
			if !e.Rollback() {
				t.Fatal("Rollback reported false")
			}
			sameState(t, "first rollback", want, stateOf(e))
			// The checkpoint stays: again.
			tt.b(e)
			if !e.Rollback() {
				t.Fatal("second Rollback reported false")
			}
			sameState(t, "second rollback", want, stateOf(e))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRollbackRefused(t *testing.T) {
	t0 := genStart.UnixMilli()
	fill := func(cfg Config) *Engine {
		e := NewEngine(cfg, 3, wallAt(0))
		for i := range 50 {
			id := fmt.Sprintf("c%d", i)
			e.Apply(nil, SourceOrders, ptr(orderAt(id, t0+int64(i)*60_000, id+"a")), wallAt(0))
			e.Apply(nil, SourceOrders, ptr(orderAt(id, t0+20*day+int64(i)*60_000, id+"b")), wallAt(0))
		}
		return e
	}
	t.Run("no checkpoint", func(t *testing.T) {
		if fill(undoConfig(false)).Rollback() {
			t.Fatal("Rollback without a checkpoint reported true")
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		e := fill(undoConfig(false))
		e.SetUndoLimit(1000)
		e.Checkpoint()
		for i := range 50 {
			id := fmt.Sprintf("c%d", i)
			e.Apply(nil, SourceOrders, ptr(orderAt(id, t0+30*day, id+"c")), wallAt(1))
		}
		if e.UndoBytes() <= 1000 {
			t.Fatalf("kept %d bytes", e.UndoBytes())
		}
		if e.Rollback() {
			t.Fatal("Rollback past the limit reported true")
		}
		e.Checkpoint() // a new transaction may roll back again
		e.Apply(nil, SourceOrders, ptr(orderAt("c1", t0+31*day, "c1d")), wallAt(1))
		if !e.Rollback() {
			t.Fatal("Rollback after a new checkpoint reported false")
		}
	})
}

// TestRollbackOverRefit: a transaction that refits the purchase model
// rolls back to what a restore of the committed changelog gives: the
// same snapshots and meta once both have started (the customers are
// repriced under the committed model), and the same triggers and state
// after the transaction is replayed.
func TestRollbackOverRefit(t *testing.T) {
	cfg := pinnedConfig()
	cfg.Model.RefitDays = 7
	cfg.Model.RefitMaxDays = 7 // every 7 days
	cfg.Model.RefitMinCustomers = 20
	stream := genStream(31, 120, 200, 0.01)
	// Where the refits happen: each transaction starts 10 events before
	// one.
	var at []int
	probe := NewEngine(cfg, 3, wallAt(0))
	for i := range stream {
		before := probe.RefitBoundary()
		probe.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
		if probe.RefitBoundary() != before && i > len(stream)/4 {
			at = append(at, i-10)
		}
	}
	if len(at) < 6 {
		t.Fatalf("%d refits in the stream", len(at))
	}
	refits, untouched := 0, 0
	for _, a := range []int{at[0], at[len(at)/2], at[len(at)-1]} {
		e := NewEngine(cfg, 3, wallAt(0))
		var trigs []event.Trigger
		for i := range a {
			trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
		}
		e.Advance(trigs, wallAt(a))
		cl := changelog{}
		cl.flush(e) // the commit
		e.Checkpoint()
		// B: up to the next refit and 20 events past it, so that most
		// customers are untouched (repriced only).
		model, at := e.PurchaseModel(), e.RefitBoundary()
		b, past := a, -1
		for ; b < len(stream) && past < 20; b++ {
			e.Apply(nil, stream[b].src, &stream[b].ev, wallAt(b))
			if past >= 0 || e.RefitBoundary() != at {
				past++
			}
		}
		if e.PurchaseModel() != model {
			refits++
		}
		untouched += e.Len() - len(e.undo.entries)
		if !e.Rollback() {
			t.Fatal("Rollback reported false")
		}
		r := cl.restore(t, cfg, wallAt(a))
		var got, want []event.Trigger
		got = e.Advance(got, wallAt(a))
		want = r.Advance(want, wallAt(a))
		w, g := stateOf(r), stateOf(e)
		w.stats, g.stats = Stats{}, Stats{} // a restored engine counts from 0
		sameState(t, fmt.Sprintf("A=%d B=%d rolled back vs restored", a, b), w, g)
		for i := a; i < b; i++ {
			got, _, _ = e.Apply(got, stream[i].src, &stream[i].ev, wallAt(i))
			want, _, _ = r.Apply(want, stream[i].src, &stream[i].ev, wallAt(i))
		}
		sameResults(t, "replayed", runResult{triggers: want}, runResult{triggers: got}, true)
		w, g = stateOf(r), stateOf(e)
		w.stats, g.stats = Stats{}, Stats{}
		slices.Sort(w.dirty)
		slices.Sort(g.dirty)
		sameState(t, "replayed", w, g)
	}
	if refits < 2 || untouched < 100 {
		t.Fatalf("%d of 3 rolled-back transactions refitted the model to new parameters, with %d customers untouched; the test proves little", refits, untouched)
	}
}

// BenchmarkApplyUndo is BenchmarkApply with the undo log on and a
// checkpoint every 5000 events (a transaction): the price of keeping one
// snapshot per customer per transaction.
func BenchmarkApplyUndo(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("undo=%v", on), func(b *testing.B) {
			const customers = 100_000
			e, f := historyEngine(customers, nil)
			var ev event.Event
			var out []event.Trigger
			now := wallAt(0)
			e.TakeDirty(func(*Customer) {}) // committed
			if on {
				e.Checkpoint()
			}
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				src := f.next(&ev)
				out, _, _ = e.Apply(out[:0], src, &ev, now)
				if n++; n%5000 == 0 {
					e.TakeDirty(func(*Customer) {})
					if on {
						e.Checkpoint()
					}
				}
			}
		})
	}
}

// BenchmarkRollback times the rollback of a transaction of 5000 events
// over 100k customers (the events themselves are not timed).
func BenchmarkRollback(b *testing.B) {
	const customers = 100_000
	e, f := historyEngine(customers, nil)
	var out []event.Trigger
	now := wallAt(0)
	e.TakeDirty(func(*Customer) {}) // committed
	e.Checkpoint()
	evs := make([]event.Event, 5000)
	srcs := make([]int, len(evs))
	for i := range evs {
		srcs[i] = f.next(&evs[i])
	}
	kept := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range evs {
			out, _, _ = e.Apply(out[:0], srcs[i], &evs[i], now)
		}
		kept = len(e.undo.entries)
		b.StartTimer()
		if !e.Rollback() {
			b.Fatal("Rollback reported false")
		}
	}
	b.ReportMetric(float64(kept), "customers/op")
}
