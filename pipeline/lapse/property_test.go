package lapse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// pinnedConfig pins what a customer's state may take from the rest of the
// task (the cohort interval and the value sketch) and disables idleness, so
// that runs differing only in batching, restores or the interleaving of
// other customers must agree byte for byte.
func pinnedConfig() Config {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 0
	cfg.Lapse.CohortMinCustomers = 1 << 30
	cfg.Value.MinCustomers = 1 << 30
	return cfg
}

// run applies the stream; advanceEvery > 0 calls Advance after that many
// events; wall moves 100 ms per event.
type runResult struct {
	triggers []event.Trigger
	snaps    map[string][]byte
	aggs     map[string]event.Aggregate
}

func wallAt(i int) time.Time { return scriptWallStart.Add(time.Duration(i) * 100 * time.Millisecond) }

func collect(e *Engine, trigs []event.Trigger) runResult {
	res := runResult{triggers: trigs, snaps: map[string][]byte{}, aggs: map[string]event.Aggregate{}}
	for slot := uint32(0); slot < e.n; slot++ {
		c := e.at(slot)
		res.snaps[c.ID()] = e.AppendSnapshot(nil, c)
		res.aggs[c.ID()] = c.Aggregate(e)
	}
	return res
}

func runStream(t testing.TB, cfg Config, stream []srcEvent, advanceEvery int) runResult {
	e := NewEngine(cfg, 3, wallAt(0))
	var trigs []event.Trigger
	for i := range stream {
		trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
		if advanceEvery > 0 && i%advanceEvery == 0 {
			trigs = e.Advance(trigs, wallAt(i))
		}
	}
	trigs = e.Advance(trigs, wallAt(len(stream)))
	return collect(e, trigs)
}

func sameResults(t *testing.T, what string, a, b runResult, compareTriggerOrder bool) {
	t.Helper()
	ids := func(ts []event.Trigger) []string {
		var out []string
		for _, tr := range ts {
			out = append(out, tr.TriggerID)
		}
		if !compareTriggerOrder {
			sort.Strings(out)
		}
		return out
	}
	if x, y := ids(a.triggers), ids(b.triggers); !slices.Equal(x, y) {
		t.Fatalf("%s: trigger ids differ: %d vs %d triggers", what, len(x), len(y))
	}
	if compareTriggerOrder && !reflect.DeepEqual(a.triggers, b.triggers) {
		for i := range a.triggers {
			if !reflect.DeepEqual(a.triggers[i], b.triggers[i]) {
				t.Fatalf("%s: trigger %d differs:\n%+v\n%+v", what, i, a.triggers[i], b.triggers[i])
			}
		}
	}
	if len(a.snaps) != len(b.snaps) {
		t.Fatalf("%s: %d vs %d customers", what, len(a.snaps), len(b.snaps))
	}
	for id, s := range a.snaps {
		if !bytes.Equal(s, b.snaps[id]) {
			t.Fatalf("%s: snapshot of %s differs", what, id)
		}
	}
}

func TestReplayIsDeterministicWhateverTheAdvanceCadence(t *testing.T) {
	stream := genStream(1, 300, 200, 0.01)
	cfg := DefaultConfig() // idleness on: the wall clock moves with the events
	a := runStream(t, cfg, stream, 1)
	if len(a.triggers) < 50 {
		t.Fatalf("only %d triggers: the stream is too tame to test anything", len(a.triggers))
	}
	for _, every := range []int{0, 7, 500} {
		b := runStream(t, cfg, stream, every)
		sameResults(t, fmt.Sprintf("advance every %d", every), a, b, true)
		if !reflect.DeepEqual(a.aggs, b.aggs) {
			t.Fatalf("advance every %d: aggregates differ", every)
		}
	}
}

// changelog simulates the runner: after each batch the dirty customers'
// snapshots and the meta go to a compacted changelog.
type changelog map[string][]byte

const metaKeyForTest = "\x00meta"

func (cl changelog) flush(e *Engine) {
	e.TakeDirty(func(c *Customer) { cl[c.ID()] = e.AppendSnapshot(nil, c) })
	cl[metaKeyForTest] = e.AppendMeta(nil)
}

func (cl changelog) restore(t testing.TB, cfg Config, now time.Time) *Engine {
	e := NewEngine(cfg, 3, now)
	keys := make([]string, 0, len(cl))
	for k := range cl {
		keys = append(keys, k)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] }) // any order works
	for _, k := range keys {
		var err error
		if k == metaKeyForTest {
			err = e.RestoreMeta(cl[k])
		} else {
			err = e.RestoreCustomer(k, cl[k])
		}
		if err != nil {
			t.Fatalf("restore %q: %v", k, err)
		}
	}
	return e
}

func TestRestoreContinuesLikeAnUninterruptedRun(t *testing.T) {
	cfg := pinnedConfig()
	stream := genStream(2, 250, 220, 0.01)
	want := runStream(t, cfg, stream, 0)
	r := rand.New(rand.NewPCG(3, 3))
	for round := range 4 {
		cl := changelog{}
		e := NewEngine(cfg, 3, wallAt(0))
		var trigs []event.Trigger
		restoreAt := len(stream) * (round + 1) / 5
		batch := 1 + r.IntN(300)
		for i := range stream {
			trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
			if i%batch == batch-1 {
				trigs = e.Advance(trigs, wallAt(i))
				cl.flush(e)
				if i >= restoreAt && restoreAt >= 0 {
					// The process dies here: a new one restores the task.
					e = cl.restore(t, cfg, wallAt(i))
					restoreAt = -1
				}
			}
		}
		trigs = e.Advance(trigs, wallAt(len(stream)))
		sameResults(t, fmt.Sprintf("restore round %d", round), want, collect(e, trigs), true)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	stream := genStream(4, 200, 200, 0)
	e := NewEngine(cfg, 3, wallAt(0))
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	f := NewEngine(cfg, 3, wallAt(0))
	if err := f.RestoreMeta(e.AppendMeta(nil)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.AppendMeta(nil), e.AppendMeta(nil)) {
		t.Fatal("meta changed by a round trip")
	}
	for slot := uint32(0); slot < e.n; slot++ {
		c := e.at(slot)
		a := e.AppendSnapshot(nil, c)
		if err := f.RestoreCustomer(c.ID(), a); err != nil {
			t.Fatal(err)
		}
		if b := f.AppendSnapshot(nil, f.Customer(c.ID())); !bytes.Equal(a, b) {
			t.Fatalf("snapshot of %s changed by a round trip", c.ID())
		}
		if !reflect.DeepEqual(c.Aggregate(e), f.Customer(c.ID()).Aggregate(f)) {
			t.Fatalf("aggregate of %s changed by a round trip", c.ID())
		}
	}
	if e.PendingTimers() != f.PendingTimers() || e.cohort.total != f.cohort.total || !slices.Equal(e.value.counts, f.value.counts) {
		t.Fatal("timers or sketches differ after restore")
	}
	// Restoring a customer again (an uncompacted changelog) replaces it.
	c := e.at(0)
	if err := f.RestoreCustomer(c.ID(), e.AppendSnapshot(nil, c)); err != nil {
		t.Fatal(err)
	}
	if f.Len() != e.Len() || e.cohort.total != f.cohort.total || e.value.total != f.value.total {
		t.Fatal("restoring twice double-counted the customer")
	}
}

// TestStateIndependentOfOtherCustomers replays the same events with the
// customers' events interleaved differently. Each grid time starts with a
// clock tick on every source, so the watermark at any event is the same in
// both runs; with the cohort and value sketches pinned, each customer's
// state and triggers depend on its own events alone.
func TestStateIndependentOfOtherCustomers(t *testing.T) {
	cfg := pinnedConfig()
	base := genStream(5, 300, 200, 0)
	ticked := func(perm *rand.Rand) []srcEvent {
		var out []srcEvent
		for i := 0; i < len(base); {
			j := i
			for j < len(base) && base[j].ev.Time == base[i].ev.Time {
				j++
			}
			for src := 0; src < 3; src++ {
				out = append(out, srcEvent{src, event.Event{Kind: event.KindEmail, EmailType: event.EmailSent,
					CustomerID: "~clock", Time: base[i].ev.Time, CSAT: event.NoScore, NPS: event.NoScore}})
			}
			group := slices.Clone(base[i:j])
			if perm != nil {
				// Shuffle the group, then put each customer's own events
				// back in their original order.
				idx := perm.Perm(len(group))
				shuffled := make([]srcEvent, len(group))
				for k, p := range idx {
					shuffled[k] = group[p]
				}
				byCust := map[string][]srcEvent{}
				for _, e := range group {
					byCust[e.ev.CustomerID] = append(byCust[e.ev.CustomerID], e)
				}
				for k := range shuffled {
					id := shuffled[k].ev.CustomerID
					shuffled[k] = byCust[id][0]
					byCust[id] = byCust[id][1:]
				}
				group = shuffled
			}
			out = append(out, group...)
			i = j
		}
		return out
	}
	a := runStream(t, cfg, ticked(nil), 0)
	b := runStream(t, cfg, ticked(rand.New(rand.NewPCG(6, 6))), 0)
	sameResults(t, "interleaving", a, b, false)
	// The trigger contents agree too, whatever their order (EmittedAt is
	// the wall clock, which moves with the position in the stream).
	byID := map[string]event.Trigger{}
	for _, tr := range a.triggers {
		tr.EmittedAt = 0
		byID[tr.TriggerID] = tr
	}
	for _, tr := range b.triggers {
		tr.EmittedAt = 0
		if !reflect.DeepEqual(byID[tr.TriggerID], tr) {
			t.Fatalf("trigger %s differs:\n%+v\n%+v", tr.TriggerID, byID[tr.TriggerID], tr)
		}
	}
}
