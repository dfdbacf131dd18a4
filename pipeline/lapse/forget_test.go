package lapse

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

const day = int64(window.MsPerDay)

func orderAt(id string, t int64, eid string) event.Event {
	return event.Event{Kind: event.KindOrder, OrderType: event.OrderPlaced, CustomerID: id, EventID: eid,
		Time: t, Amount: 25, Currency: "EUR", CSAT: -1, NPS: -1}
}

// TestEvictionHeap: 1M customers, of whom 900k go silent past the TTL;
// once evicted, the engine's heap is at most 15 % of what it was, and the
// 100k that stayed are intact. The customers are lean (an e-mail each, so
// that no lapse timer fires on the way), which keeps the test to seconds;
// the slots, index, timers and ids it measures are every customer's.
func TestEvictionHeap(t *testing.T) {
	const total, active = 1_000_000, 100_000
	ttl := 1095 * 24 * time.Hour
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	e.SetTTL(ttl)
	t0 := genStart.UnixMilli()
	// The ids are made again where needed, so that the test's own
	// memory does not count in the engine's.
	idOf := func(i int) string { return "customer-" + strconv.Itoa(10_000_000+i) }
	now := wallAt(0)
	start := time.Now()
	var ev event.Event
	for i := range total {
		ev = mailAt(idOf(i), t0+int64(i))
		e.Apply(nil, SourceEmail, &ev, now)
	}
	// Every tenth customer is heard of again two years later.
	for i := 0; i < total; i += total / active {
		ev = mailAt(idOf(i), t0+730*day+int64(i))
		e.Apply(nil, SourceEmail, &ev, now)
	}
	e.TakeDirty(func(*Customer) {})
	e.Advance(nil, now)
	e.TakeGone(func(*Gone) {})
	if e.Len() != total {
		t.Fatalf("%d customers before the TTL, want %d", e.Len(), total)
	}
	before := heapInUse()

	// Past the TTL of the silent ones, not of the active ones.
	built := time.Since(start)
	e.Follow(nil, t0+730*day+ttl.Milliseconds()-day, now)
	evicted := time.Since(start) - built
	gone := 0
	e.TakeGone(func(g *Gone) {
		gone++
		if !g.Aggregate.Evicted || g.Aggregate.CustomerID != g.ID || g.Aggregate.EmailsDelivered30d != 1 {
			t.Fatalf("gone %+v: want an evicted row of a one-order customer", g.Aggregate)
		}
	})
	e.TakeDirty(func(*Customer) {})
	after := heapInUse()
	if gone != total-active || e.Len() != active || e.Stats().Evicted != total-active {
		t.Fatalf("evicted %d (stats %d), %d left; want %d and %d", gone, e.Stats().Evicted, e.Len(), total-active, active)
	}
	t.Logf("built in %v, evicted in %v", built, evicted)
	t.Logf("heap %d MB before eviction, %d MB after (%.1f %%)", before>>20, after>>20, 100*float64(after)/float64(before))
	if after*100 > before*15 {
		t.Errorf("heap after eviction %d bytes, more than 15 %% of %d", after, before)
	}
	for i := range total {
		id := idOf(i)
		c := e.Customer(id)
		switch {
		case i%(total/active) == 0 && (c == nil || c.ID() != id || c.Version() != 2):
			t.Fatalf("active customer %s lost or wrong after the eviction: %v", id, c)
		case i%(total/active) != 0 && c != nil:
			t.Fatalf("silent customer %s not evicted", id)
		}
	}
}

func mailAt(id string, t int64) event.Event {
	return event.Event{Kind: event.KindEmail, EmailType: event.EmailDelivered, CustomerID: id, Time: t, CSAT: -1, NPS: -1}
}

// TestEraseModel erases and re-creates customers at random and checks the
// engine against a model: every customer present is found under its own
// id with its own state and timer, every erased one is gone, and one that
// comes back starts anew.
func TestEraseModel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	e.SetTTL(400 * 24 * time.Hour)
	model := map[string]int{} // id -> orders since it was (re)created
	ts := genStart.UnixMilli()
	now := wallAt(0)
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = "c" + strconv.Itoa(i) + string(make([]byte, i%20)) // some longer than 8 bytes
	}
	for step := range 60_000 {
		id := ids[r.IntN(len(ids))]
		ts += 60_000
		if r.IntN(4) == 0 {
			if got := e.Erase(id); got != (model[id] > 0) {
				t.Fatalf("step %d: Erase(%q) = %v, model has %d orders", step, id, got, model[id])
			}
			delete(model, id)
		} else {
			ev := orderAt(id, ts, "e"+strconv.Itoa(step))
			e.Apply(nil, SourceOrders, &ev, now)
			model[id]++
		}
		if step%5000 == 0 {
			e.TakeDirty(func(*Customer) {})
		}
	}
	if e.Len() != len(model) {
		t.Fatalf("%d customers, model %d", e.Len(), len(model))
	}
	for _, id := range ids {
		c := e.Customer(id)
		n, ok := model[id]
		switch {
		case ok && (c == nil || c.ID() != id || int(c.orders) != n):
			t.Fatalf("customer %q: got %v, want %d orders", id, c, n)
		case !ok && c != nil:
			t.Fatalf("erased customer %q still there", id)
		case ok:
			if due, armed := c.Due(); !armed || due > c.lastChange+401*day {
				t.Fatalf("customer %q: timer %d %v, want one by its eviction within %d", id, due, armed, c.lastChange+401*day)
			}
		}
	}
	if int(e.Stats().Erased) == 0 {
		t.Fatal("no erasure counted")
	}
	// A customer that comes back is new: version 1.
	for id := range model {
		e.Erase(id)
		ev := orderAt(id, ts+day, "again")
		e.Apply(nil, SourceOrders, &ev, now)
		if c := e.Customer(id); c == nil || c.Version() != 1 || c.orders != 1 {
			t.Fatalf("customer %q back after erasure: %v, want a new one", id, c)
		}
		break
	}
}

// TestEraseDropsPendingRows: an erased customer's end-of-day rows and
// eviction not yet taken are forgotten too, and TakeDirty does not hand it
// out.
func TestEraseDropsPendingRows(t *testing.T) {
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	e.KeepDays()
	ts := genStart.UnixMilli()
	now := wallAt(0)
	for i, id := range []string{"a", "b", "a", "b"} {
		ev := orderAt(id, ts+int64(i)*day, "e"+strconv.Itoa(i))
		e.Apply(nil, SourceOrders, &ev, now)
	}
	if !e.Erase("a") || e.Erase("a") {
		t.Fatal("Erase: want true, then false")
	}
	var dirty, days []string
	e.TakeDirty(func(c *Customer) { dirty = append(dirty, c.ID()) })
	e.TakeClosedDays(func(a *event.Aggregate) { days = append(days, a.CustomerID) })
	if len(dirty) != 1 || dirty[0] != "b" || len(days) != 1 || days[0] != "b" {
		t.Fatalf("after erasing a: dirty %v, closed days %v; want only b", dirty, days)
	}
}

// TestRestoreTombstoneAndTTL: a restored snapshot gets its eviction timer
// even if it was written without the TTL, and Forget (a tombstone) removes
// a restored customer.
func TestRestoreTombstoneAndTTL(t *testing.T) {
	src := NewEngine(DefaultConfig(), 3, wallAt(0))
	ts := genStart.UnixMilli()
	ev := orderAt("x", ts, "")
	src.Apply(nil, SourceOrders, &ev, wallAt(0))
	ev = orderAt("y", ts, "")
	src.Apply(nil, SourceOrders, &ev, wallAt(0))
	dst := NewEngine(DefaultConfig(), 3, wallAt(0))
	dst.SetTTL(10 * 24 * time.Hour)
	for _, id := range []string{"x", "y"} {
		if err := dst.RestoreCustomer(id, src.AppendSnapshot(nil, src.Customer(id))); err != nil {
			t.Fatal(err)
		}
	}
	dst.Forget("x")
	if dst.Customer("x") != nil || dst.Len() != 1 {
		t.Fatal("x still there after Forget")
	}
	// ts is midnight: the end of y's day of change plus 10 days.
	if due, ok := dst.Customer("y").Due(); !ok || due != ts+11*day {
		t.Fatalf("y's timer %d %v, want its eviction at %d", due, ok, ts+11*day)
	}
	dst.Follow(nil, ts+11*day-1, wallAt(0))
	if dst.Len() != 1 {
		t.Fatal("y evicted before its day")
	}
	dst.Follow(nil, ts+11*day, wallAt(0))
	n := 0
	dst.TakeGone(func(g *Gone) { n++ })
	if n != 1 || dst.Len() != 0 {
		t.Fatalf("%d evicted, %d left; want 1 and 0", n, dst.Len())
	}
}

// TestEvictionDropsClosedDays: the end-of-day rows kept for a customer
// before its eviction are left out (the evicted row replaces them), those
// of the customer seen again after it are not.
func TestEvictionDropsClosedDays(t *testing.T) {
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	e.KeepDays()
	e.SetTTL(3 * 24 * time.Hour)
	ts := genStart.UnixMilli()
	now := wallAt(0)
	apply := func(id string, t int64) {
		ev := mailAt(id, t)
		e.Apply(nil, SourceEmail, &ev, now)
	}
	apply("x", ts)
	apply("x", ts+day) // closes x's first day
	apply("y", ts+day)
	e.Follow(nil, ts+5*day, now) // x evicted (y too): the end of day 1, plus 3 days
	apply("x", ts+6*day)         // x seen again
	apply("x", ts+7*day)         // closes its new first day
	var days []string
	e.TakeClosedDays(func(a *event.Aggregate) {
		days = append(days, a.CustomerID+" day "+strconv.FormatInt((a.AsOf-ts)/day, 10))
	})
	var gone []string
	e.TakeGone(func(g *Gone) { gone = append(gone, g.ID) })
	if want := []string{"x day 6"}; !slices.Equal(days, want) {
		t.Errorf("closed days %v, want %v (only x's after its return)", days, want)
	}
	if want := []string{"x", "y"}; !slices.Equal(gone, want) {
		t.Errorf("evicted %v, want %v", gone, want)
	}
}

// TestChurnHeapFlat: customers come and go (each is heard of on one day
// and evicted ten days later), so the set of active customers is flat;
// the heap stays flat too: freed slots, index cells, timers and id bytes
// are reused.
func TestChurnHeapFlat(t *testing.T) {
	const perDay, days = 5000, 60
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	e.SetTTL(10 * 24 * time.Hour)
	ts := genStart.UnixMilli()
	now := wallAt(0)
	var at20, n20 uint64
	evicted := 0
	for d := range days {
		for i := range perDay {
			ev := mailAt("churn-"+strconv.Itoa(d*perDay+i), ts+int64(d)*day+int64(i))
			e.Apply(nil, SourceEmail, &ev, now)
		}
		e.Follow(nil, ts+int64(d+1)*day, now)
		e.TakeGone(func(*Gone) { evicted++ })
		e.TakeDirty(func(*Customer) {})
		if d == 20 {
			at20, n20 = heapInUse(), uint64(e.Len())
		}
	}
	end, n := heapInUse(), uint64(e.Len())
	if n != n20 || evicted != (days-10)*perDay {
		t.Fatalf("%d customers at day 20, %d at the end, %d evicted; want a flat set and %d evicted", n20, n, evicted, (days-10)*perDay)
	}
	t.Logf("heap %d kB at day 20, %d kB at day %d (%d customers)", at20>>10, end>>10, days, n)
	if end > at20+at20/10 {
		t.Errorf("heap grew from %d to %d bytes with a flat set of %d customers", at20, end, n)
	}
}
