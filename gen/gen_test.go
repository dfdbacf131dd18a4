package gen_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const day = int64(24 * time.Hour / time.Millisecond)

func newGen(t testing.TB, cfg gen.Config) *gen.Generator {
	t.Helper()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// collect returns a copy of every record.
func collect(t testing.TB, g *gen.Generator) []gen.Record {
	t.Helper()
	var out []gen.Record
	err := g.Each(func(r *gen.Record) error {
		c := *r
		if r.Malformed != nil {
			c.Malformed = slices.Clone(r.Malformed)
			if c.Malformed == nil {
				c.Malformed = []byte{}
			}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// digest hashes the stream as a producer would send it.
func digest(t testing.TB, g *gen.Generator) [32]byte {
	t.Helper()
	h := sha256.New()
	var buf []byte
	err := g.Each(func(r *gen.Record) error {
		buf = append(buf[:0], byte(r.Kind))
		if r.Duplicate {
			buf = append(buf, 'D')
		}
		if r.Malformed != nil {
			buf = append(buf, 'M')
			buf = append(buf, r.MalformedKind...)
			buf = append(buf, r.Malformed...)
		} else {
			buf = codec.AppendEventJSON(buf, &r.Event)
		}
		h.Write(buf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestDeterminism(t *testing.T) {
	cfg := gen.Config{Customers: 300, Days: 120, Seed: 42, MalformedShare: 0.01, DuplicateShare: 0.01}
	a := digest(t, newGen(t, cfg))
	if b := digest(t, newGen(t, cfg)); a != b {
		t.Fatal("two generators with the same config differ")
	}
	g := newGen(t, cfg)
	if b := digest(t, g); a != digest(t, g) || a != b {
		t.Fatal("two Each calls on one generator differ")
	}
	cfg.Seed = 43
	if b := digest(t, newGen(t, cfg)); a == b {
		t.Fatal("different seeds give the same stream")
	}
	// The truth is deterministic too.
	cfg.Seed = 42
	if t1, t2 := fmt.Sprint(newGen(t, cfg).Truth()), fmt.Sprint(newGen(t, cfg).Truth()); t1 != t2 {
		t.Fatal("truth differs between two generators with the same config")
	}
}

// TestDefectsLeaveValidStream: defective records are added, never
// substituted, so the valid stream does not depend on the shares.
func TestDefectsLeaveValidStream(t *testing.T) {
	valid := func(mal, dup float64) []event.Event {
		var out []event.Event
		for _, r := range collect(t, newGen(t, gen.Config{Customers: 100, Days: 60, Seed: 8, MalformedShare: mal, DuplicateShare: dup})) {
			if r.Malformed == nil && !r.Duplicate {
				out = append(out, r.Event)
			}
		}
		return out
	}
	a, b := valid(-1, -1), valid(0.1, 0.05)
	if !slices.Equal(a, b) {
		t.Fatalf("valid streams differ: %d and %d events", len(a), len(b))
	}
}

func TestTimeOrderAndIDs(t *testing.T) {
	g := newGen(t, gen.Config{Customers: 400, Days: 200, Seed: 7, MalformedShare: 0.01, DuplicateShare: 0.01})
	from, to := g.Range()
	recs := collect(t, g)
	ids := map[string]bool{}
	var prev *gen.Record
	for i := range recs {
		r := &recs[i]
		if r.Event.Time < from.UnixMilli() || r.Event.Time >= to.UnixMilli() {
			t.Fatalf("record %d at %v, outside [%v, %v)", i, r.Event.EventTime(), from, to)
		}
		if prev != nil && r.Event.Time < prev.Event.Time {
			t.Fatalf("record %d at %v before record %d at %v", i, r.Event.EventTime(), i-1, prev.Event.EventTime())
		}
		if r.Kind != r.Event.Kind || r.Event.CustomerID == "" {
			t.Fatalf("record %d: kind %v, event kind %v, customer %q", i, r.Kind, r.Event.Kind, r.Event.CustomerID)
		}
		switch {
		case r.Duplicate:
			if prev == nil || prev.Malformed != nil || prev.Event != r.Event {
				t.Fatalf("duplicate %d does not repeat the record before it", i)
			}
		case r.Malformed != nil:
			if r.MalformedKind == "" {
				t.Fatalf("malformed record %d has no kind", i)
			}
		default:
			if ids[r.Event.EventID] {
				t.Fatalf("event id %s used twice", r.Event.EventID)
			}
			ids[r.Event.EventID] = true
		}
		prev = r
	}
}

func TestArchetypeShares(t *testing.T) {
	f := func(n int, mix gen.Mix) {
		t.Helper()
		g := newGen(t, gen.Config{Customers: n, Days: 30, Mix: mix})
		want := mix
		if want == nil {
			want = gen.DefaultMix()
		}
		var sum float64
		for _, s := range want {
			sum += s
		}
		got := map[gen.Archetype]int{}
		for i, tr := range g.Truth() {
			if w := fmt.Sprintf("c%06d", i+1); tr.CustomerID != w {
				t.Fatalf("customer %d is %q, want %q", i, tr.CustomerID, w)
			}
			got[tr.Archetype]++
		}
		for _, a := range gen.Archetypes() {
			exact := want[a] / sum * float64(n)
			if math.Abs(float64(got[a])-exact) >= 1 {
				t.Errorf("n=%d: %d %s, want %.2f", n, got[a], a, exact)
			}
		}
	}
	f(1000, nil)
	f(777, nil)
	f(10, gen.Mix{gen.Lapser: 1, gen.SteadyWeekly: 1})
	f(501, gen.Mix{gen.Returner: 0.2, gen.Bouncer: 0.3, gen.OneTimeBuyer: 0.5})
	// The assignment is shuffled: the first customers are not all of the
	// first archetype.
	g := newGen(t, gen.Config{Customers: 100, Days: 30})
	first := g.Truth()[0].Archetype
	same := 0
	for _, tr := range g.Truth()[:20] {
		if tr.Archetype == first {
			same++
		}
	}
	if same == 20 {
		t.Error("archetypes are not shuffled")
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(cfg gen.Config, field string) {
		t.Helper()
		_, err := gen.New(cfg)
		var ce *gen.ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, gen.ErrConfig) {
			t.Errorf("%+v: got %v, want a *ConfigError for %s", cfg, err, field)
		}
	}
	f(gen.Config{Customers: -1}, "Customers")
	f(gen.Config{Customers: 1_000_000}, "Customers")
	f(gen.Config{Days: -5}, "Days")
	f(gen.Config{Mix: gen.Mix{"loyal": 1}}, "Mix")
	f(gen.Config{Mix: gen.Mix{gen.Lapser: -1}}, "Mix")
	f(gen.Config{Mix: gen.Mix{gen.Lapser: 0}}, "Mix")
	f(gen.Config{Mix: gen.Mix{gen.Lapser: math.NaN()}}, "Mix")
	f(gen.Config{MalformedShare: 0.6}, "MalformedShare")
	f(gen.Config{DuplicateShare: math.NaN()}, "DuplicateShare")
	f(gen.Config{Start: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, "Start")

	g := newGen(t, gen.Config{})
	c := g.Config()
	if c.Customers != gen.DefaultCustomers || c.Days != gen.DefaultDays || !c.Start.Equal(gen.DefaultStart) ||
		c.MalformedShare != gen.DefaultMalformedShare || c.DuplicateShare != gen.DefaultDuplicateShare {
		t.Errorf("defaults not applied: %+v", c)
	}
	g = newGen(t, gen.Config{Customers: 50, Days: 60, MalformedShare: -1, DuplicateShare: -1})
	for _, r := range collect(t, g) {
		if r.Malformed != nil || r.Duplicate {
			t.Fatal("a negative share still gives defective records")
		}
	}
}

func TestDefectShares(t *testing.T) {
	f := func(mal, dup float64) {
		t.Helper()
		g := newGen(t, gen.Config{Customers: 600, Days: 150, Seed: 3, MalformedShare: mal, DuplicateShare: dup})
		var n, m, d int
		kinds := map[string]int{}
		err := g.Each(func(r *gen.Record) error {
			n++
			if r.Malformed != nil {
				m++
				kinds[r.MalformedKind]++
			}
			if r.Duplicate {
				d++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Binomial counts: allow 4 standard deviations.
		check := func(what string, got int, share float64) {
			t.Helper()
			want := share * float64(n)
			if sd := math.Sqrt(want); math.Abs(float64(got)-want) > 4*sd+1 {
				t.Errorf("%s: %d of %d records, want about %.0f", what, got, n, want)
			}
		}
		check("malformed", m, mal)
		check("duplicates", d, dup)
		if mal >= 0.01 {
			for _, k := range gen.MalformedKinds() {
				if kinds[k] == 0 {
					t.Errorf("no malformed record of kind %s", k)
				}
			}
		}
	}
	f(0.002, 0.001)
	f(0.05, 0.02)
}

func TestStopsAtError(t *testing.T) {
	g := newGen(t, gen.Config{Customers: 50, Days: 30})
	stop := errors.New("stop")
	n := 0
	err := g.Each(func(*gen.Record) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("got %v after %d records, want stop after 10", err, n)
	}
}

func TestMustNotTriggerOnlySteady(t *testing.T) {
	for _, tr := range newGen(t, gen.Config{Customers: 500, Days: 365}).Truth() {
		if tr.MustNotTrigger != tr.Archetype.Steady() {
			t.Errorf("%s (%s): MustNotTrigger %v", tr.CustomerID, tr.Archetype, tr.MustNotTrigger)
		}
		if tr.MustNotTrigger && (len(tr.Expect) > 0 || len(tr.Allow) > 0) {
			t.Errorf("%s: steady but expects %v, allows %v", tr.CustomerID, tr.Expect, tr.Allow)
		}
		for _, e := range tr.Expect {
			if e.From > e.By {
				t.Errorf("%s: %v expected from %d after by %d", tr.CustomerID, e.Reason, e.From, e.By)
			}
		}
	}
}

func isPlaced(e *event.Event) bool {
	return e.Kind == event.KindOrder && e.OrderType == event.OrderPlaced
}
