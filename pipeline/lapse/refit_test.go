package lapse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// refitConfig refits every 7 days on a sample of at most 150 customers,
// from 100 up, with PURCHASE_LAPSE reading the model (max_p_alive 0.5),
// and no idleness (the wall clock does not move the watermark).
func refitConfig() Config {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 0
	cfg.Lapse.MaxPAlive = 0.5
	cfg.Model.RefitSample = 150
	cfg.Model.RefitMinCustomers = 100
	return cfg
}

// TestRefitAtEventTimeBoundaries: the engine refits once per multiple of
// refit_days that its watermark crosses, on at most refit_sample
// customers as of the boundary, moves the parameters away from the
// defaults, and counts and reports each refit.
func TestRefitAtEventTimeBoundaries(t *testing.T) {
	cfg := refitConfig()
	cfg.Model.RefitMaxDays = cfg.Model.RefitDays // every boundary (TestRefitCadence: fewer)
	e := NewEngine(cfg, 3, wallAt(0))
	var infos []RefitInfo
	var wmAt []int64
	e.OnRefit(func(i RefitInfo) {
		infos = append(infos, i)
		wmAt = append(wmAt, e.wm.Current())
	})
	stream := genStream(5, 300, 120, 0)
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	period := 7 * window.MsPerDay
	if len(infos) < 15 {
		t.Fatalf("%d refits in 120 days, want about 17", len(infos))
	}
	if got := e.Stats().Refits; got != uint64(len(infos)) {
		t.Fatalf("Stats().Refits = %d, hook saw %d", got, len(infos))
	}
	fitted := 0
	for i, in := range infos {
		if in.At%period != 0 || in.At > wmAt[i] || wmAt[i]-in.At >= period {
			t.Fatalf("refit %d at %d: not the last boundary before the watermark %d", i, in.At, wmAt[i])
		}
		if i > 0 && in.At != infos[i-1].At+period {
			t.Fatalf("refit %d at %d, previous at %d: a boundary skipped or repeated", i, in.At, infos[i-1].At)
		}
		if in.Sample > cfg.Model.RefitSample || in.Sample > in.Customers {
			t.Fatalf("refit %d read %d of %d customers (cap %d)", i, in.Sample, in.Customers, cfg.Model.RefitSample)
		}
		if in.Fitted != (in.Sample >= cfg.Model.RefitMinCustomers) || in.Err != nil {
			t.Fatalf("refit %d: fitted %v with %d customers (min %d), err %v", i, in.Fitted, in.Sample, cfg.Model.RefitMinCustomers, in.Err)
		}
		if in.Fitted {
			fitted++
			if in.Fit.Iter > 2*cfg.Model.RefitMaxIterations || !in.After.Valid() || in.After == in.Before {
				t.Fatalf("refit %d: %+v", i, in)
			}
		} else if in.After != in.Before {
			t.Fatalf("refit %d moved the parameters without a fit", i)
		}
	}
	last := infos[len(infos)-1]
	if fitted < 10 || last.Customers <= cfg.Model.RefitSample || last.Sample != cfg.Model.RefitSample {
		t.Fatalf("%d fitted; last read %d of %d", fitted, last.Sample, last.Customers)
	}
	if e.PurchaseModel() != last.After || e.PurchaseModel() == btyd.DefaultParams(btyd.MBGNBD) || !(last.PopAOV > 0) {
		t.Fatalf("model in use %v, last refit %v (value per purchase %v)", e.PurchaseModel(), last.After, last.PopAOV)
	}
	t.Logf("%d refits, last %v on %d of %d customers in %v (%d evaluations)", len(infos), last.After, last.Sample, last.Customers, last.Duration, last.Fit.Evals)

	off := cfg
	off.Model.RefitDays = 0
	e2 := NewEngine(off, 3, wallAt(0))
	for i := range stream {
		e2.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	if e2.Stats().Refits != 0 || e2.PurchaseModel() != btyd.DefaultParams(btyd.MBGNBD) {
		t.Fatalf("refit_days 0: %d refits, model %v", e2.Stats().Refits, e2.PurchaseModel())
	}
}

// TestRefitSampleIsByID: the sample is the customers with an order whose
// id hashes smallest, whatever their slots (arrival order, restore order).
func TestRefitSampleIsByID(t *testing.T) {
	cfg := refitConfig()
	cfg.Model.RefitDays = 0
	e := NewEngine(cfg, 3, wallAt(0))
	stream := genStream(6, 400, 60, 0)
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	// The same customers restored in another order (other slots).
	f := NewEngine(cfg, 3, wallAt(0))
	var ids []string
	e.Each(func(c *Customer) { ids = append(ids, c.ID()) })
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		if err := f.RestoreCustomer(id, e.AppendSnapshot(nil, e.Customer(id))); err != nil {
			t.Fatal(err)
		}
	}
	// By brute force: every customer with an order, sorted by hash.
	var want []string
	e.Each(func(c *Customer) {
		if c.LastOrderAt() != 0 {
			want = append(want, c.ID())
		}
	})
	slices.SortFunc(want, func(a, b string) int {
		if ha, hb := idHash(a), idHash(b); ha != hb {
			if ha < hb {
				return -1
			}
			return 1
		}
		return 0
	})
	names := func(cs []*Customer) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID())
		}
		return out
	}
	for _, n := range []int{1, 100, len(want), len(want) + 5} {
		a, totalA := e.sample(n)
		b, totalB := f.sample(n)
		if totalA != len(want) || totalB != len(want) {
			t.Fatalf("customers with an order: %d and %d, want %d", totalA, totalB, len(want))
		}
		if w := want[:min(n, len(want))]; !slices.Equal(names(a), w) || !slices.Equal(names(b), w) {
			t.Fatalf("sample of %d: not the smallest hashes", n)
		}
	}
}

// TestRefitRestoreContinuesLikeAnUninterruptedRun: with refits on and the
// lapse reading the model, a task that dies after any batch and is
// restored from its changelog (customers and meta, in any order) goes on
// to give exactly the triggers and snapshots of a run that never stopped:
// the refits fall at the same boundaries with the same parameters, and a
// restore re-arms the timers that a refit moved without touching their
// customers.
func TestRefitRestoreContinuesLikeAnUninterruptedRun(t *testing.T) {
	cfg := refitConfig()
	stream := genStream(8, 250, 200, 0.01)
	var wantRefits []RefitInfo
	e := NewEngine(cfg, 3, wallAt(0))
	e.OnRefit(func(i RefitInfo) { wantRefits = append(wantRefits, i) })
	var trigs []event.Trigger
	for i := range stream {
		trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
	}
	trigs = e.Advance(trigs, wallAt(len(stream)))
	want := collect(e, trigs)
	lapses := 0
	for _, tr := range trigs {
		if tr.Kind == event.TriggerWinback && tr.PrimaryReason == event.ReasonPurchaseLapse {
			lapses++
		}
	}
	if len(wantRefits) < 8 || lapses < 20 {
		t.Fatalf("%d refits, %d lapse triggers: too few to test anything", len(wantRefits), lapses)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for round := range 4 {
		cl := changelog{}
		e := NewEngine(cfg, 3, wallAt(0))
		var got []RefitInfo
		hook := func(i RefitInfo) { got = append(got, i) }
		e.OnRefit(hook)
		var trigs []event.Trigger
		restoreAt := len(stream) * (round + 1) / 5
		batch := 1 + r.IntN(400)
		for i := range stream {
			trigs, _, _ = e.Apply(trigs, stream[i].src, &stream[i].ev, wallAt(i))
			if i%batch == batch-1 {
				trigs = e.Advance(trigs, wallAt(i))
				cl.flush(e)
				if i >= restoreAt && restoreAt >= 0 {
					e = cl.restore(t, cfg, wallAt(i))
					e.OnRefit(hook)
					restoreAt = -1
				}
			}
		}
		trigs = e.Advance(trigs, wallAt(len(stream)))
		sameResults(t, fmt.Sprintf("restore round %d (batch %d)", round, batch), want, collect(e, trigs), true)
		if len(got) != len(wantRefits) {
			t.Fatalf("round %d: %d refits, want %d", round, len(got), len(wantRefits))
		}
		for i := range got {
			if got[i].At != wantRefits[i].At || got[i].After != wantRefits[i].After || got[i].PopAOV != wantRefits[i].PopAOV {
				t.Fatalf("round %d: refit %d at %d gave %v, want %v at %d", round, i, got[i].At, got[i].After, wantRefits[i].After, wantRefits[i].At)
			}
		}
		if e.PurchaseModel() != wantRefits[len(wantRefits)-1].After {
			t.Fatalf("round %d: model %v after the run", round, e.PurchaseModel())
		}
	}
}

// TestRefitMovesLapseTimers: without the re-pricing pass that a restored
// meta asks for, a restored task would keep timers armed under the old
// parameters. The test restores customers whose snapshots predate a refit
// and checks their timers follow the restored parameters.
func TestRefitMovesLapseTimers(t *testing.T) {
	cfg := refitConfig()
	cfg.Model.RefitDays = 0
	e := NewEngine(cfg, 3, wallAt(0))
	stream := genStream(10, 200, 90, 0)
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	snaps := map[string][]byte{}
	e.Each(func(c *Customer) { snaps[c.ID()] = e.AppendSnapshot(nil, c) })
	dues := func(e *Engine) map[string]int64 {
		m := map[string]int64{}
		e.Each(func(c *Customer) {
			if d, ok := e.timers.Due(c.slot); ok {
				m[c.ID()] = d
			}
		})
		return m
	}
	before := dues(e)
	e.refit(e.Watermark() / window.MsPerDay * window.MsPerDay) // customers untouched
	after := dues(e)
	moved := 0
	for id, d := range after {
		if before[id] != d {
			moved++
		}
	}
	if moved < 20 {
		t.Fatalf("the refit moved %d timers (model %v): nothing to test", moved, e.PurchaseModel())
	}
	f := NewEngine(cfg, 3, wallAt(0))
	if err := f.RestoreMeta(e.AppendMeta(nil)); err != nil {
		t.Fatal(err)
	}
	for id, s := range snaps { // written before the refit
		if err := f.RestoreCustomer(id, s); err != nil {
			t.Fatal(err)
		}
	}
	f.Advance(nil, wallAt(len(stream)))
	if got := dues(f); len(got) != len(after) {
		t.Fatalf("%d timers after restore, want %d", len(got), len(after))
	} else {
		for id, d := range after {
			if got[id] != d {
				t.Fatalf("%s: timer at %d after restore, want %d (before the refit %d)", id, got[id], d, before[id])
			}
		}
	}
	if !slices.Equal(f.value.counts, e.value.counts) {
		t.Fatal("CLV cells differ after restore")
	}
}

// TestMetaV2RoundTripAndV1: the meta carries the purchase model and the
// last refit boundary; a version-1 meta (the watermark alone) restores
// with the defaults; bad parameters are corrupt and change nothing.
func TestMetaV3RoundTripV2AndV1(t *testing.T) {
	cfg := refitConfig()
	e := NewEngine(cfg, 3, wallAt(0))
	stream := genStream(11, 250, 60, 0)
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	if e.refitAt == 0 || e.PurchaseModel() == btyd.DefaultParams(btyd.MBGNBD) {
		t.Fatal("no refit to carry")
	}
	meta := e.AppendMeta(nil)
	if meta[0] != metaSnapshotV3 || e.refitNext <= e.refitAt {
		t.Fatalf("meta version %d, next refit %d after %d", meta[0], e.refitNext, e.refitAt)
	}
	f := NewEngine(cfg, 3, wallAt(0))
	if err := f.RestoreMeta(meta); err != nil {
		t.Fatal(err)
	}
	if f.PurchaseModel() != e.PurchaseModel() || f.popAOV != e.popAOV || f.RefitBoundary() != e.RefitBoundary() || f.Watermark() != e.Watermark() || f.refitNext != e.refitNext {
		t.Fatalf("restored %v %v %d, want %v %v %d", f.PurchaseModel(), f.popAOV, f.refitAt, e.PurchaseModel(), e.popAOV, e.refitAt)
	}
	if !bytes.Equal(f.AppendMeta(nil), meta) {
		t.Fatal("meta changed by a round trip")
	}

	// v2: the same without the next refit, which is then the next boundary.
	v2 := slices.Clone(meta[:len(meta)-len(binary.AppendVarint(nil, e.refitNext))])
	v2[0] = metaSnapshotV2
	h := NewEngine(cfg, 3, wallAt(0))
	if err := h.RestoreMeta(v2); err != nil {
		t.Fatal(err)
	}
	if h.PurchaseModel() != e.PurchaseModel() || h.RefitBoundary() != e.RefitBoundary() || h.refitNext != 0 {
		t.Fatalf("v2: model %v, boundary %d, next %d", h.PurchaseModel(), h.RefitBoundary(), h.refitNext)
	}

	v1 := e.wm.AppendBinary([]byte{metaSnapshotV1})
	g := NewEngine(cfg, 3, wallAt(0))
	if err := g.RestoreMeta(v1); err != nil {
		t.Fatal(err)
	}
	if g.Watermark() != e.Watermark() || g.PurchaseModel() != btyd.DefaultParams(btyd.MBGNBD) || g.RefitBoundary() != 0 || g.popAOV != 0 {
		t.Fatalf("v1: watermark %d, model %v, boundary %d", g.Watermark(), g.PurchaseModel(), g.RefitBoundary())
	}

	n := len(v1) // the parameters start after the watermark and the boundary
	bad := slices.Clone(meta)
	at := n + len(binary.AppendVarint(nil, e.refitAt)) + 2 // kind, K
	binary.LittleEndian.PutUint64(bad[at:], math.Float64bits(math.NaN()))
	before := f.AppendMeta(nil)
	var se *SnapshotError
	if err := f.RestoreMeta(bad); !errors.As(err, &se) || !errors.Is(err, ErrCorruptSnapshot) || se.Field != "model" {
		t.Fatalf("NaN r: %v", err)
	}
	if err := f.RestoreMeta(append(slices.Clone(meta), 0)); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := f.RestoreMeta(meta[:len(meta)-3]); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("truncated: %v", err)
	}
	if !bytes.Equal(f.AppendMeta(nil), before) {
		t.Fatal("a failed restore changed the meta")
	}
}

// TestRefitCadence: a refit that is not significantly better than the
// parameters in use (likelihood ratio) doubles the wait to the next one, up
// to refit_max_days; one that is brings it back to refit_days. A year of a
// settled population costs far fewer refits than one per week, and the
// model in use stays as good: on the last sample, the weekly run's
// parameters explain the data at most a likelihood-ratio test's noise
// better.
func TestRefitCadence(t *testing.T) {
	cfg := refitConfig()
	period, max := int64(cfg.Model.RefitDays)*window.MsPerDay, int64(cfg.Model.RefitMaxDays)*window.MsPerDay
	stream := genStream(5, 600, 365, 0)
	run := func(cfg Config) (*Engine, []RefitInfo) {
		e := NewEngine(cfg, 3, wallAt(0))
		var infos []RefitInfo
		e.OnRefit(func(i RefitInfo) { infos = append(infos, i) })
		for i := range stream {
			e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
		}
		return e, infos
	}
	e, infos := run(cfg)
	doubled := 0
	for i, in := range infos {
		wait := in.Next - in.At
		if wait%period != 0 || wait < period || wait > max {
			t.Fatalf("refit %d: next after %d days", i, wait/window.MsPerDay)
		}
		if i > 0 && in.At != infos[i-1].Next {
			t.Fatalf("refit %d at %d, the previous one said %d", i, in.At, infos[i-1].Next)
		}
		stable := in.Fitted && i > 0 && 2*(in.Fit.LL-in.Fit.LL0) < refitStable
		switch prev := in.At - prevAt(infos, i); {
		case stable && wait != min(2*prev, max):
			t.Fatalf("refit %d: stable after a wait of %d days, next in %d", i, prev/window.MsPerDay, wait/window.MsPerDay)
		case !stable && wait != period:
			t.Fatalf("refit %d: not stable (gain %.2f), next in %d days", i, in.Fit.LL-in.Fit.LL0, wait/window.MsPerDay)
		}
		if stable {
			doubled++
		}
	}
	weekly := cfg
	weekly.Model.RefitMaxDays = weekly.Model.RefitDays
	w, weeklyInfos := run(weekly)
	if doubled < 3 || 2*len(infos) > len(weeklyInfos) {
		t.Fatalf("%d refits (%d stable), against %d weekly", len(infos), doubled, len(weeklyInfos))
	}
	// Both models on the weekly run's last sample.
	last := weeklyInfos[len(weeklyInfos)-1]
	cs, _ := w.sample(cfg.Model.RefitSample)
	var obs []btyd.Obs
	for _, c := range cs {
		o, _ := c.obs(last.At, false)
		obs = append(obs, o)
	}
	ll := func(p btyd.Params) float64 { return p.LogLikelihood(obs) }
	if d := ll(w.PurchaseModel()) - ll(e.PurchaseModel()); 2*d > refitStable {
		t.Fatalf("the weekly model explains the last sample better by %.2f nats", d)
	}
	t.Logf("%d refits (%d doubled the wait) against %d weekly", len(infos), doubled, len(weeklyInfos))
}

// prevAt is the boundary of the refit before infos[i] (infos[0]'s own for
// the first).
func prevAt(infos []RefitInfo, i int) int64 {
	if i == 0 {
		return infos[0].At
	}
	return infos[i-1].At
}
