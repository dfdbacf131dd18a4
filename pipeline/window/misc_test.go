package window

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestIntervalsStats(t *testing.T) {
	f := func(hours []int64, wantMed, wantMAD float64) {
		t.Helper()
		var iv Intervals
		for _, h := range hours {
			iv.Push(h * 3_600_000)
		}
		med, mad := iv.Stats()
		if med != wantMed || mad != wantMAD {
			t.Fatalf("Stats(%v) = %v, %v; want %v, %v", hours, med, mad, wantMed, wantMAD)
		}
	}
	f(nil, 0, 0)
	f([]int64{168}, 168, 0)
	f([]int64{168, 160, 900, 170}, 169, 5) // one outlier barely moves it
	// Only the last 7 count: the first (huge) one is dropped.
	f([]int64{5000, 24, 24, 24, 24, 24, 24, 24}, 24, 0)
	f([]int64{10, 13}, 11.5, 1.5)
	f([]int64{1, 2, 4, 7}, 3, 1.5)

	// The kept statistics equal the statistics of the intervals, after
	// every push and after a decode.
	ref := func(h []uint16) (float64, float64) {
		v := make([]float64, len(h))
		for i, x := range h {
			v[i] = float64(x)
		}
		if len(v) == 0 {
			return 0, 0
		}
		med := medianOf(v)
		for i := range v {
			v[i] = math.Abs(v[i] - med)
		}
		return med, medianOf(v)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var iv Intervals
		for range r.IntN(12) {
			iv.Push(r.Int64N(1 << r.IntN(36)))
			wantMed, wantMAD := ref(iv.Hours())
			if med, mad := iv.Stats(); med != wantMed || mad != wantMAD {
				t.Fatalf("Stats of %v = %v, %v; want %v, %v", iv.Hours(), med, mad, wantMed, wantMAD)
			}
			var dec Intervals
			if _, err := dec.DecodeBinary(iv.AppendBinary(nil)); err != nil || dec != iv {
				t.Fatalf("decoded %+v (%v), want %+v", dec, err, iv)
			}
		}
	}
}

func TestSupport(t *testing.T) {
	var s Support
	const d = 20000
	s.Record(d, SupportOpened|SupportComplaint, d)
	s.Record(d+10, SupportOpened, d+10)
	s.Record(d+5, SupportReopened, d+10) // late, inserted in order
	s.Record(d+40, SupportResolved, d+40)
	got := s.Sums(d + 40)
	want := SupportSums{Opened30: 0, Opened90: 2, Reopened90: 1, Resolved30: 1, Resolved90: 1, Complaint90: 1}
	if got != want {
		t.Fatalf("Sums = %+v, want %+v", got, want)
	}
	if s.Record(d+40-SupportDays, SupportOpened, d+40) {
		t.Fatal("event beyond 90 days accepted")
	}
	const sla = 72 * 3_600_000
	s.OpenTicket(1, 1000, false)
	s.OpenTicket(2, 5000, false)
	s.OpenTicket(1, 9000, false) // already open: unchanged
	if due, ok := s.NextSLA(sla); !ok || due != 1000+sla {
		t.Fatalf("NextSLA = %d %v", due, ok)
	}
	if n := s.Breach(5000+sla, sla); n != 2 {
		t.Fatalf("Breach = %d, want 2", n)
	}
	if _, ok := s.NextSLA(sla); ok {
		t.Fatal("breached tickets still due")
	}
	s.OpenTicket(1, 20000, true) // reopened: the clock restarts
	if due, _ := s.NextSLA(sla); due != 20000+sla {
		t.Fatalf("NextSLA after reopen = %d", due)
	}
	if !s.ResolveTicket(2) || s.ResolveTicket(2) || s.OpenCount() != 1 {
		t.Fatalf("resolve: open count %d", s.OpenCount())
	}
	for i := range MaxOpenTickets + 3 {
		s.OpenTicket(uint32(100+i), int64(30000+i), false)
	}
	if s.OpenCount() != MaxOpenTickets+4 || len(s.OpenTickets()) != MaxOpenTickets {
		t.Fatalf("overflow: count %d tracked %d", s.OpenCount(), len(s.OpenTickets()))
	}
	s.SetCSAT(2, d+3)
	if v, day, ok := s.CSAT(); !ok || v != 2 || day != d+3 {
		t.Fatalf("CSAT = %d %d %v", v, day, ok)
	}
	if _, _, ok := s.NPS(); ok {
		t.Fatal("NPS set without an answer")
	}
	b := s.AppendBinary(nil)
	var p Support
	if rest, err := p.DecodeBinary(b); err != nil || len(rest) != 0 {
		t.Fatalf("round trip: %v", err)
	}
	if p != s {
		t.Fatal("round trip changed the state")
	}
}

func TestWatermark(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	w := NewWatermark(3, time.Minute, 5*time.Minute, t0)
	ms := func(m int64) int64 { return m * 60_000 }
	w.Observe(0, ms(100), at(4*time.Minute))
	w.Observe(1, ms(50), at(4*time.Minute))
	// Source 2 never produced anything and the tracker is young: hold.
	if got := w.Advance(at(time.Minute)); got != NoWatermark {
		t.Fatalf("watermark with a young empty source = %d", got)
	}
	// After the idle timeout the empty source no longer holds it back.
	if got := w.Advance(at(5 * time.Minute)); got != ms(49) {
		t.Fatalf("watermark = %d, want min-lateness %d", got, ms(49))
	}
	// Source 1 keeps producing; source 0 is idle 5 minutes after its event.
	w.Observe(1, ms(80), at(9*time.Minute))
	if got := w.Advance(at(9 * time.Minute)); got != ms(79) {
		t.Fatalf("watermark = %d, want %d", got, ms(79))
	}
	// Source 1 goes past source 0; source 0 idle: source 1 alone counts.
	w.Observe(1, ms(300), at(10*time.Minute))
	if got := w.Advance(at(10 * time.Minute)); got != ms(299) {
		t.Fatalf("watermark = %d, want %d", got, ms(299))
	}
	// Source 0 comes back behind: the watermark does not go back.
	w.Observe(0, ms(120), at(11*time.Minute))
	if got := w.Advance(at(11 * time.Minute)); got != ms(299) {
		t.Fatalf("watermark moved back to %d", got)
	}
	// Everyone idle: the most advanced source counts.
	w.Observe(0, ms(500), at(12*time.Minute))
	if got := w.Advance(at(30 * time.Minute)); got != ms(499) {
		t.Fatalf("all idle: watermark = %d, want %d", got, ms(499))
	}
	b := w.AppendBinary(nil)
	r := NewWatermark(3, time.Minute, 5*time.Minute, t0)
	if _, err := r.Restore(b, at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r.Current() != ms(499) || r.Max(1) != ms(300) || r.Idle(0, at(time.Hour+time.Minute)) {
		t.Fatal("restore lost state or did not restart the idle clocks")
	}
	if _, err := r.Restore(b[:len(b)-1], t0); err == nil {
		t.Fatal("truncated watermark accepted")
	}
}

// TestWatermarkDrained: a source read to its end that never produced
// anything holds nobody back; one that produced is still waited for until
// the idle timeout; with idleness off (timeout 0) nothing changes.
func TestWatermarkDrained(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ms := func(m int64) int64 { return m * 60_000 }
	for _, c := range []struct {
		name    string
		idle    time.Duration
		drained [3]bool
		want    int64
	}{
		{"none drained: the empty sources hold", 5 * time.Minute, [3]bool{}, NoWatermark},
		{"one empty source drained: the other holds", 5 * time.Minute, [3]bool{false, true, false}, NoWatermark},
		{"both empty sources drained", 5 * time.Minute, [3]bool{false, true, true}, ms(99)},
		{"every source drained: the one that produced still counts", 5 * time.Minute, [3]bool{true, true, true}, ms(99)},
		{"idleness off", 0, [3]bool{false, true, true}, NoWatermark},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := NewWatermark(3, time.Minute, c.idle, t0)
			w.Observe(0, ms(100), t0)
			for i, d := range c.drained {
				w.SetDrained(i, d)
			}
			if got := w.Advance(t0.Add(time.Second)); got != c.want {
				t.Fatalf("watermark %d, want %d", got, c.want)
			}
		})
	}
	// A source that produced is not idle at once for being drained: a
	// live input is read to its end between its records.
	w := NewWatermark(2, 0, 5*time.Minute, t0)
	w.Observe(0, ms(100), t0)
	w.Observe(1, ms(50), t0)
	w.SetDrained(1, true)
	if got := w.Advance(t0.Add(time.Minute)); got != ms(50) {
		t.Fatalf("watermark %d, want the drained source's %d", got, ms(50))
	}
	// Drained is not persisted: a restored tracker waits again.
	e := NewWatermark(2, 0, 5*time.Minute, t0)
	e.Observe(0, ms(100), t0)
	e.SetDrained(1, true)
	r := NewWatermark(2, 0, 5*time.Minute, t0)
	if _, err := r.Restore(e.AppendBinary(nil), t0); err != nil {
		t.Fatal(err)
	}
	if r.Idle(1, t0.Add(time.Second)) {
		t.Fatal("the restored tracker kept the drained flag")
	}
}

func TestTimersAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var tm Timers
	ref := map[uint32]int64{}
	for step := range 20000 {
		k := uint32(r.IntN(300))
		switch op := r.IntN(10); {
		case op < 6:
			d := r.Int64N(1000)
			tm.Set(k, d)
			ref[k] = d
		case op < 8:
			_, had := ref[k]
			if tm.Remove(k) != had {
				t.Fatalf("step %d: Remove(%d) disagrees", step, k)
			}
			delete(ref, k)
		default:
			wm := r.Int64N(1000)
			for {
				key, due, ok := tm.PopDue(wm)
				if !ok {
					break
				}
				// Must be the smallest (due, key) in the reference.
				for k2, d2 := range ref {
					if d2 < due || (d2 == due && k2 < key) {
						t.Fatalf("step %d: popped (%d,%d) before (%d,%d)", step, due, key, d2, k2)
					}
				}
				if ref[key] != due || due > wm {
					t.Fatalf("step %d: popped wrong timer", step)
				}
				delete(ref, key)
			}
		}
		if tm.Len() != len(ref) {
			t.Fatalf("step %d: Len %d, want %d", step, tm.Len(), len(ref))
		}
	}
	for k, d := range ref {
		if got, ok := tm.Due(k); !ok || got != d {
			t.Fatalf("Due(%d) = %d %v, want %d", k, got, ok, d)
		}
	}
}
