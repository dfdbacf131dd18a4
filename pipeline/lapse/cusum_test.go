package lapse

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// cusumAlarms runs the engagement CUSUM (cusumLLR, one delivery per step)
// for years customer-years of perYear deliveries opened with probability p,
// tested against rate p0, and returns the alarms (upcrossings of h) per
// customer-year.
func cusumAlarms(r *rand.Rand, p, p0, alt, h float64, perYear, years int) float64 {
	alarms := 0
	for range years {
		s, above := 0.0, false
		for range perYear {
			k := 0
			if r.Float64() < p {
				k = 1
			}
			s = cusumLLR(s, k, 1, p0, alt, h)
			if s >= h && !above {
				alarms++
			}
			above = s >= h
		}
	}
	return float64(alarms) / float64(years)
}

// TestCUSUMFalseAlarmRate checks the false-alarm budget docs/signals.md
// derives: at a steady open rate p ≥ p0 each restart of the CUSUM is a
// Wald SPRT that reaches h with probability at most e^−h, so a customer
// with n deliveries a year gets at most n·e^−h alarms a year (104 e-mails
// at the default 8 nats: 3.5 per 100 customer-years). Simulated, it is
// well below that bound, and a lower threshold (a negative control) or a
// baseline tested above the true rate breaks it.
func TestCUSUMFalseAlarmRate(t *testing.T) {
	d := DefaultConfig().Engagement
	const perYear, years = 104, 4000
	bound := perYear * math.Exp(-d.CUSUMThreshold)
	r := rand.New(rand.NewPCG(17, 4))
	for _, p := range []float64{0.15, 0.2, 0.35, 0.5, d.MaxBaseline} {
		got := cusumAlarms(r, p, p, d.AltRatio, d.CUSUMThreshold, perYear, years)
		t.Logf("p0 = %.2f: %.2f false alarms per 100 customer-years (bound %.2f)", p, 100*got, 100*bound)
		if got > bound {
			t.Errorf("p0 = %.2f: %.4f alarms per customer-year, above the bound n·e^−h = %.4f", p, got, bound)
		}
		// An opener above the tested rate (the margin and the cap) alarms
		// less still.
		if hi := cusumAlarms(r, min(p+0.2, 0.95), p, d.AltRatio, d.CUSUMThreshold, perYear, years); hi > got+0.002 {
			t.Errorf("p = %.2f tested at %.2f: %.4f alarms a year, more than at p = p0 (%.4f)", p+0.2, p, hi, got)
		}
	}
	// Negative controls: half the threshold, or a baseline tested well
	// above the true rate, blow the budget.
	if got := cusumAlarms(r, 0.5, 0.5, d.AltRatio, d.CUSUMThreshold/2, perYear, 500); got <= bound {
		t.Errorf("threshold %.1f: %.4f alarms a year, want more than the bound at %.1f (%.4f)", d.CUSUMThreshold/2, got, d.CUSUMThreshold, bound)
	}
	if got := cusumAlarms(r, 0.3, 0.6, d.AltRatio, d.CUSUMThreshold, perYear, 500); got <= bound {
		t.Errorf("0.3 opener tested at 0.6: %.4f alarms a year, want more than the bound %.4f", got, bound)
	}
}

// TestCUSUMDetectionDelay checks the other side of the budget, as
// docs/signals.md states it: a 50% opener (tested at 0.41, the baseline of
// ~17 deliveries less its margin) who stops opening gains
// ℓ = ln((1 − r·p0)/(1 − p0)) = 0.44 nats per unopened e-mail and alarms
// after ⌈h/ℓ⌉ = 19 of them; one open on the way (once the run holds more
// than ln(1/r)) costs the e-mail itself and ln(1/r)/ℓ ≈ 3.6 more.
func TestCUSUMDetectionDelay(t *testing.T) {
	d := DefaultConfig().Engagement
	const p0 = 0.41
	l := math.Log((1 - d.AltRatio*p0) / (1 - p0))
	steps := func(open int) int {
		s := 0.0
		for i := 1; i < 100; i++ {
			k := 0
			if i == open {
				k = 1
			}
			if s = cusumLLR(s, k, 1, p0, d.AltRatio, d.CUSUMThreshold); s >= d.CUSUMThreshold {
				return i
			}
		}
		return -1
	}
	if n, want := steps(0), int(math.Ceil(d.CUSUMThreshold/l)); n != want || want != 19 {
		t.Errorf("silence: alarm after %d e-mails, want %d (19 at the defaults)", n, want)
	}
	if n, want := steps(10), 1+int(math.Ceil((d.CUSUMThreshold+math.Log(1/d.AltRatio))/l)); n != want || want != 23 {
		t.Errorf("one open at the 10th: alarm after %d e-mails, want %d (23 at the defaults)", n, want)
	}
	// Opening at the tested rate never alarms in a year of e-mails.
	s := 0.0
	for i := range 104 {
		k := 0
		if i%5 < 2 { // 40%
			k = 1
		}
		if s = cusumLLR(s, k, 1, 0.41, d.AltRatio, d.CUSUMThreshold); s >= d.CUSUMThreshold {
			t.Fatalf("a steady 40%% opener alarmed at e-mail %d", i)
		}
	}
}

// TestSnapshotV1Restores: customer snapshots written before the sequential
// test (format version 1, testdata/snapshot_v1.txt, written by the engine
// at c43a8b5) still restore, into the same state with the engagement
// CUSUM at 0: re-encoded, they are the version-2 snapshot with the same
// fields and an empty statistic. The restored customers keep working.
func TestSnapshotV1Restores(t *testing.T) {
	raw, err := os.ReadFile("testdata/snapshot_v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, hx, _ := strings.Cut(line, " ")
		v1, err := hex.DecodeString(hx)
		if err != nil || len(v1) == 0 || v1[0] != customerSnapshotV1 {
			t.Fatalf("%s: bad fixture (%v)", id, err)
		}
		if err := e.RestoreCustomer(id, v1); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		// Re-encoded in the current version: the CUSUM starts at 0,
		// the repeat purchases are counted from what v1 kept, and the
		// budget's last send is the newest day a reason fired.
		c := e.Customer(id)
		_, rep := c.Orders()
		want := binary.AppendUvarint(append(append([]byte{customerSnapshotV4}, v1[1:]...), 0, 0), uint64(rep))
		want = binary.AppendUvarint(want, uint64(slices.Max(c.firedDay[:])))
		want = append(want, 0, 0, 0, 0, 0) // older sends, held day, held reasons
		if got := e.AppendSnapshot(nil, e.Customer(id)); !bytes.Equal(got, want) {
			t.Errorf("%s: re-encoded as\n%x\nwant\n%x", id, got, want)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d snapshots in the fixture", n)
	}
	// They go on: the rest of a stream applies and fires as usual.
	var out []event.Trigger
	for i, ev := range genStreamFrom(9, 0, 40, 400, 0) {
		if ev.ev.Time < genStart.Add(200*24*time.Hour).UnixMilli() {
			continue
		}
		out, _, _ = e.Apply(out, ev.src, &ev.ev, wallAt(i))
	}
	if len(out) == 0 {
		t.Error("restored customers fired nothing over 200 more days")
	}
}
