package lapse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/event"
)

func TestPurchaseModelState(t *testing.T) {
	s := &script{t: t, name: "inline", wall: scriptWallStart, saved: map[string]string{}, evClock: genStart}
	for _, line := range []string{
		"@2026-01-01T10:00Z repeat 8 every 7d order w PLACED 40",
		"@2026-01-01T11:00Z order w PLACED 5", // within 12 h: the same occasion
		"@2026-01-03T10:00Z order once PLACED 20",
		"wall +3m",
		"@2026-03-06T00:00Z tick",
	} {
		s.exec(strings.Fields(line))
	}
	e := s.engine()
	w, once := e.Customer("w"), e.Customer("once")
	if net, rep := w.Orders(); net != 9 || rep != 7 {
		t.Fatalf("w: %d orders, %d repeats; want 9 and 7", net, rep)
	}
	asOf := w.lastChange
	o := e.Obs(w, asOf)
	if o.X != 7 || o.Tx < 48.9 || o.Tx > 49.1 {
		t.Fatalf("w: obs %+v", o)
	}
	pw, aw, ok := e.PLapse(w, asOf, 90)
	po, ao, ok2 := e.PLapse(once, asOf, 90)
	if !ok || !ok2 || pw <= 0 || pw >= 1 || po <= 0 || po >= 1 {
		t.Fatalf("p_lapse w %v (%v), once %v (%v)", pw, ok, po, ok2)
	}
	// A one-time buyer is not alive for certain (MBG/NBD, not BG/NBD).
	if ao >= 1 || aw >= 1 {
		t.Fatalf("P(alive) w %v, once %v: want < 1", aw, ao)
	}
	// A weekly buyer silent for 2 weeks is more likely lapsed than ever
	// after 3 weeks more.
	later, _, _ := e.PLapse(w, asOf+21*86_400_000, 90)
	if later <= pw {
		t.Fatalf("p_lapse did not grow with silence: %v then %v", pw, later)
	}

	// Exposed in the aggregate, the API and the lapse trigger's evidence.
	a := w.Aggregate(e)
	if a.PLapse <= 0 || a.PLapse >= 1 {
		t.Fatalf("aggregate p_lapse %v", a.PLapse)
	}
	b, _ := w.MarshalJSON()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["p_lapse"] == nil || m["purchase_model"].(map[string]any)["repeat_purchases"].(float64) != 7 {
		t.Fatalf("JSON: %s", b)
	}
	found := false
	for _, tr := range s.pending {
		if tr.CustomerID == "w" && tr.Evidence["p_lapse"] > 0 && tr.Evidence["repeat_purchases"] >= 5 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no lapse trigger of w with p_lapse evidence: %v", s.pending)
	}

	// Parameters: invalid ones are refused; a refit changes them.
	if e.SetPurchaseModel(btyd.Params{Kind: btyd.MBGNBD, R: -1, Alpha: 1, A: 1, B: 1}) {
		t.Fatal("negative r accepted")
	}
	before := e.PurchaseModel()
	after, err := e.RefitPurchaseModel(asOf, 1)
	if err != nil || after == before || e.PurchaseModel() != after {
		t.Fatalf("refit: %v → %v (%v)", before, after, err)
	}
	if p, _ := e.RefitPurchaseModel(asOf, 100); p != after {
		t.Fatalf("refit with too few customers changed the model")
	}
}

func TestSnapshotV1Readable(t *testing.T) {
	s := &script{t: t, name: "inline", wall: scriptWallStart, saved: map[string]string{}, evClock: genStart}
	for _, line := range []string{"@2026-01-01T10:00Z repeat 5 every 7d order w PLACED 40", "wall +3m"} {
		s.exec(strings.Fields(line))
	}
	e := s.engine()
	w := e.Customer("w")
	v4 := e.AppendSnapshot(nil, w)
	if v4[0] != customerSnapshotV4 {
		t.Fatalf("version %d", v4[0])
	}
	e2 := NewEngine(DefaultConfig(), 3, scriptWallStart)
	if err := e2.RestoreCustomer("w", v4); err != nil {
		t.Fatal(err)
	}
	if _, rep := e2.Customer("w").Orders(); rep != 4 {
		t.Fatalf("v4 restore: %d repeats, want 4", rep)
	}
	// v3 is v4 without the budget (six zero bytes here: no trigger, nothing
	// held), v2 is v3 without the trailing repeat count (one byte here), v1
	// is v2 without the engagement CUSUM (two bytes: no e-mails here).
	if !bytes.Equal(v4[len(v4)-6:], make([]byte, 6)) {
		t.Fatalf("budget tail %x", v4[len(v4)-6:])
	}
	v3 := append([]byte{customerSnapshotV3}, v4[1:len(v4)-6]...)
	for _, old := range [][]byte{
		v3,
		append([]byte{customerSnapshotV2}, v3[1:len(v3)-1]...),
		append([]byte{customerSnapshotV1}, v3[1:len(v3)-3]...),
	} {
		e3 := NewEngine(DefaultConfig(), 3, scriptWallStart)
		if err := e3.RestoreCustomer("w", old); err != nil {
			t.Fatalf("v%d: %v", old[0], err)
		}
		if _, rep := e3.Customer("w").Orders(); rep != 4 {
			t.Fatalf("v%d restore: %d repeats, want 4 (orders − 1)", old[0], rep)
		}
	}
	if err := e2.RestoreCustomer("x", append([]byte{customerSnapshotV4 + 1}, v4[1:]...)); err == nil {
		t.Fatal("a newer version accepted")
	}
}

// TestLapseOnEvidence: with purchase_lapse.max_p_alive set, the lapse is
// due when both the rhythm's gap has passed and the model's P(alive) has
// fallen to it; the trigger names the model's gap. With max_regularity 1
// the model is plain MBG/NBD; with the default 16 a clockwork buyer's
// rhythm lends it Erlang order 16, and its silence is strong evidence.
func TestLapseOnEvidence(t *testing.T) {
	const day = int64(86_400_000)
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	run := func(maxPAlive float64, kmax int) (*Engine, []event.Trigger) {
		cfg := DefaultConfig()
		cfg.Lapse.MaxPAlive = maxPAlive
		cfg.Lapse.MaxRegularity = kmax
		e := NewEngine(cfg, 1, time.UnixMilli(t0))
		var out []event.Trigger
		for i := range 8 { // weekly: the rhythm's gap is 14 days
			ev := event.Event{Kind: event.KindOrder, OrderType: event.OrderPlaced, CustomerID: "w",
				EventID: fmt.Sprint("o", i), Time: t0 + int64(i)*7*day, Amount: 40, Currency: "EUR", Items: 1}
			out, _, _ = e.Apply(out, SourceOrders, &ev, time.UnixMilli(ev.Time))
		}
		// Another customer's order moves the watermark on.
		ev := event.Event{Kind: event.KindOrder, OrderType: event.OrderPlaced, CustomerID: "z",
			EventID: "z1", Time: t0 + 120*day, Amount: 10, Currency: "EUR", Items: 1}
		out, _, _ = e.Apply(out, SourceOrders, &ev, time.UnixMilli(ev.Time))
		var mine []event.Trigger
		for _, tr := range out {
			if tr.CustomerID == "w" {
				mine = append(mine, tr)
			}
		}
		return e, mine
	}
	last := t0 + 7*7*day
	_, off := run(0, 1)
	e, on := run(0.5, 1)
	if len(off) != 1 || off[0].AsOf != last+14*day {
		t.Fatalf("rule alone: %+v, want one lapse at 14 days", off)
	}
	// Default parameters: x = 7, t_x = 49 days; P(alive) = 0.5 after
	// (30 + 49) × (11^(1/7.5) − 1) ≈ 29.76 days.
	want := e.PurchaseModel().SilenceForPAlive(7, 49, 0.5)
	if len(on) != 1 || math.Abs(float64(on[0].AsOf-last)/float64(day)-want) > 0.001 || want < 29 || want > 30.5 {
		t.Fatalf("with max_p_alive 0.5: %+v, want one lapse at %.2f days", on, want)
	}
	// p_alive is p_lapse's, where dropping out is not final
	// (dormant_rate): a little above the check's P(alive).
	if ev := on[0].Evidence; math.Abs(ev["model_gap_days"]-want) > 0.001 || ev["lapse_p_alive"] > 0.5001 ||
		ev["max_p_alive"] != 0.5 || ev["lapse_regularity_k"] != 1 || !(ev["p_alive"] > ev["lapse_p_alive"]) || ev["p_alive"] > 0.52 ||
		ev["due_gap_days"] != ev["days_since_last_order"] {
		t.Fatalf("evidence %v", on[0].Evidence)
	}

	// A clockwork weekly buyer (every interval 7 days: CV 0) gets K =
	// 16: P(alive) under it falls to 0.5 within the rule's 14 days, so
	// the rule's gap decides, and the evidence says how low it fell.
	ek, reg := run(0.5, 16)
	k16 := ek.PurchaseModel()
	k16.K = 16
	wantK := k16.SilenceForPAlive(7, 49, 0.5)
	if len(reg) != 1 || reg[0].AsOf != last+14*day || !(wantK < 14) {
		t.Fatalf("max_regularity 16: %+v, want one lapse at 14 days (model gap %.2f)", reg, wantK)
	}
	if ev := reg[0].Evidence; ev["lapse_regularity_k"] != 16 || math.Abs(ev["model_gap_days"]-wantK) > 0.001 ||
		math.Abs(ev["lapse_p_alive"]-round4(k16.PAlive(7, 49, 63))) > 1e-9 || !(ev["lapse_p_alive"] < 0.5) || !(ev["p_alive"] > 0.5) {
		t.Fatalf("max_regularity 16: evidence %v", ev)
	}

	// New parameters re-arm the timers at once.
	cfg := DefaultConfig()
	cfg.Lapse.MaxPAlive = 0.5
	cfg.Lapse.MaxRegularity = 1
	e2 := NewEngine(cfg, 1, time.UnixMilli(t0))
	for i := range 8 {
		ev := event.Event{Kind: event.KindOrder, OrderType: event.OrderPlaced, CustomerID: "w",
			EventID: fmt.Sprint("o", i), Time: t0 + int64(i)*7*day, Amount: 40, Currency: "EUR", Items: 1}
		e2.Apply(nil, SourceOrders, &ev, time.UnixMilli(ev.Time))
	}
	before, _ := e2.Customer("w").Due()
	p := e2.PurchaseModel()
	p.A /= 10 // drop-out much rarer: P(alive) falls later
	e2.SetPurchaseModel(p)
	after, _ := e2.Customer("w").Due()
	// The engine keeps the model gap as float32 days (Customer.modelGap):
	// exact to well under a second.
	if want := last + int64(math.Round(p.SilenceForPAlive(7, 49, 0.5)*float64(day))); after <= before || after < want-1000 || after > want+1000 {
		t.Fatalf("timer %v → %v after the refit, want %v", before, after, want)
	}
}
