package lapse

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/winback/winback/pipeline/event"
)

// mixedFeed is a cheap endless mixed stream over n customers, each event
// for a random one: 8% orders, 90% e-mail (sent, delivered, opened,
// clicked), 2% support; event time moves 0.6 s per event (about 10 events
// per customer per week at 100k customers).
type mixedFeed struct {
	r         *rand.Rand
	ids       []string
	eids      []string
	tickets   [3]string
	campaigns []string
	t         int64
	i         int
}

func newMixedFeed(n int) *mixedFeed {
	f := &mixedFeed{r: rand.New(rand.NewPCG(1, 2)), t: genStart.UnixMilli()}
	for i := range n {
		f.ids = append(f.ids, "c"+strconv.Itoa(1_000_000+i))
	}
	for i := range 1 << 20 {
		f.eids = append(f.eids, "e"+strconv.Itoa(i))
	}
	for i := range f.tickets {
		f.tickets[i] = "t" + strconv.Itoa(i)
	}
	for i := range 1000 {
		f.campaigns = append(f.campaigns, "cmp"+strconv.Itoa(i))
	}
	return f
}

func (f *mixedFeed) next(ev *event.Event) int {
	f.i++
	f.t += 600
	*ev = event.Event{EventID: f.eids[f.i&(1<<20-1)], CustomerID: f.ids[f.r.IntN(len(f.ids))], Time: f.t, CSAT: -1, NPS: -1}
	switch x := f.r.IntN(50); {
	case x < 4:
		ev.Kind, ev.OrderType, ev.Amount, ev.Currency = event.KindOrder, event.OrderPlaced, 10+float64(f.r.IntN(9000))/100, "EUR"
		return SourceOrders
	case x == 4:
		ev.Kind, ev.SupportType, ev.TicketID, ev.Category = event.KindSupport, event.SupportType(1+f.r.IntN(4)), f.tickets[f.r.IntN(3)], "billing"
		if f.r.IntN(4) == 0 {
			ev.CSAT = int8(1 + f.r.IntN(5))
		}
		return SourceSupport
	default:
		ev.Kind, ev.EmailType, ev.CampaignID = event.KindEmail, event.EmailType(1+f.r.IntN(4)), f.campaigns[(f.i/200000)%len(f.campaigns)]
		return SourceEmail
	}
}

// historyEngine is an engine (set up by setup, if not nil) whose
// customers customers have 30 events each of a mixed feed's history, and
// the feed, to go on with.
func historyEngine(customers int, setup func(*Engine)) (*Engine, *mixedFeed) {
	f := newMixedFeed(customers)
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	if setup != nil {
		setup(e)
	}
	var ev event.Event
	var out []event.Trigger
	for range 30 * customers {
		src := f.next(&ev)
		out, _, _ = e.Apply(out[:0], src, &ev, wallAt(0))
	}
	return e, f
}

// BenchmarkApply applies a mixed stream over 100k customers that already
// have a few weeks of history; triggers and timers fire as they fall due.
func BenchmarkApply(b *testing.B) {
	const customers = 100_000
	e, f := historyEngine(customers, nil)
	var ev event.Event
	var out []event.Trigger
	now := wallAt(0)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		src := f.next(&ev)
		out, _, _ = e.Apply(out[:0], src, &ev, now)
		n++
	}
	b.ReportMetric(float64(e.Len()), "customers")
}

// BenchmarkSnapshot encodes and restores one customer with a half-year
// history of orders, e-mails and tickets.
func BenchmarkSnapshot(b *testing.B) {
	stream := genStream(12, 50, 180, 0)
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	c := e.Customer("c000007")
	if c == nil || c.sup == nil {
		b.Fatal("want a customer with tickets")
	}
	snap := e.AppendSnapshot(nil, c)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = e.AppendSnapshot(buf[:0], c)
		}
		b.ReportMetric(float64(len(snap)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		f := NewEngine(DefaultConfig(), 3, wallAt(0))
		b.ReportAllocs()
		for b.Loop() {
			if err := f.RestoreCustomer("c000007", snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemoryPerCustomer builds 100k customers with a realistic
// half-year history (genStream: weekly to monthly buyers, two campaigns a
// week, some tickets) and reports the heap they take per customer, index
// and timers included.
func BenchmarkMemoryPerCustomer(b *testing.B) {
	const customers, chunk = 100_000, 2000
	for b.Loop() {
		before := heapInUse()
		e := NewEngine(DefaultConfig(), 3, wallAt(0))
		for first := 0; first < customers; first += chunk {
			stream := genStreamFrom(uint64(first), first, chunk, 180, 0)
			for i := range stream {
				e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(0))
			}
			e.TakeDirty(func(*Customer) {}) // as the runner does after each batch
		}
		e.Advance(nil, wallAt(0).Add(time.Hour))
		after := heapInUse()
		b.ReportMetric(float64(after-before)/float64(e.Len()), "B/customer")
		b.ReportMetric(float64(unsafe.Sizeof(Customer{})), "B/struct")
		runtime.KeepAlive(e)
	}
}

// BenchmarkAggregate builds the aggregate row of customers with a
// half-year history (half of them with a trigger behind them), as the
// runner does for every changed customer and the engine for every closed
// day. One op is one row.
func BenchmarkAggregate(b *testing.B) {
	stream := genStream(12, 400, 180, 0)
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	e.Advance(nil, wallAt(len(stream)))
	var cs []*Customer
	triggered := 0
	e.Each(func(c *Customer) {
		cs = append(cs, c)
		if c.lastKind != 0 {
			triggered++
		}
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := cs[i%len(cs)].Aggregate(e)
		_ = a
		i++
	}
	b.ReportMetric(float64(triggered)/float64(len(cs)), "triggered/customer")
}

// BenchmarkKeepDays is a backlog taken in one batch, as a task catching up
// reads it: a year of 300 customers applied with KeepDays, and one
// TakeClosedDays at the end, which hands out an end-of-day row for nearly
// every event. One op is the whole backlog.
func BenchmarkKeepDays(b *testing.B) {
	stream := genStream(21, 300, 365, 0)
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		e := NewEngine(DefaultConfig(), 3, wallAt(0))
		e.KeepDays()
		for i := range stream {
			e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(0))
		}
		rows = 0
		e.TakeClosedDays(func(*event.Aggregate) { rows++ })
	}
	b.ReportMetric(float64(len(stream)), "events")
	b.ReportMetric(float64(rows), "rows")
}
