package lapse

import (
	"math"
	"reflect"
	"testing"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

type dayKey struct {
	customer string
	day      int32
}

// dailyRows runs stream like the runner does, taking the rows for
// ClickHouse after every batch events (TakeClosedDays, when keepDays, then
// TakeDirty), and returns what customer_daily keeps of them: per customer
// and event-time day of AsOf, the row of the highest version. Rows of equal
// version must be equal.
func dailyRows(t *testing.T, stream []srcEvent, batch int, keepDays bool) map[dayKey]event.Aggregate {
	t.Helper()
	e := NewEngine(pinnedConfig(), 3, wallAt(0))
	if keepDays {
		e.KeepDays()
	}
	out := map[dayKey]event.Aggregate{}
	add := func(a *event.Aggregate) {
		k := dayKey{a.CustomerID, window.Day(a.AsOf)}
		old, ok := out[k]
		switch {
		case !ok || a.Version > old.Version:
			out[k] = *a
		case a.Version == old.Version && !reflect.DeepEqual(*a, old):
			t.Fatalf("%v: two rows of version %d differ:\n%+v\n%+v", k, a.Version, old, *a)
		}
	}
	flush := func(i int) {
		e.Advance(nil, wallAt(i))
		e.TakeClosedDays(add)
		e.TakeDirty(func(c *Customer) { a := c.Aggregate(e); add(&a) })
	}
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
		if (i+1)%batch == 0 {
			flush(i)
		}
	}
	flush(len(stream))
	return out
}

// TestDailyRowsIndependentOfBatching: customer_daily must hold the same
// rows whether the input comes live (a batch per event) or as a backfill
// (thousands of events, weeks of event time, per batch). Without KeepDays a
// backfill loses the earlier days of every customer that changed on
// several days within one batch.
func TestDailyRowsIndependentOfBatching(t *testing.T) {
	stream := genStream(7, 60, 120, 0.02) // with duplicates
	live := dailyRows(t, stream, 1, true)
	if len(live) < 60*20 {
		t.Fatalf("only %d customer-days: the stream is too thin to test anything", len(live))
	}
	if plain := dailyRows(t, stream, 1, false); !reflect.DeepEqual(plain, live) {
		t.Fatal("KeepDays changes the rows of a live run (a batch per event)")
	}
	for _, batch := range []int{2, 37, 1000, len(stream)} {
		got := dailyRows(t, stream, batch, true)
		if len(got) != len(live) {
			t.Errorf("batches of %d: %d customer-days, live %d", batch, len(got), len(live))
		}
		for k, want := range live {
			if a, ok := got[k]; !ok {
				t.Errorf("batches of %d: no row for %s on day %d", batch, k.customer, k.day)
			} else if !reflect.DeepEqual(a, want) {
				t.Errorf("batches of %d: %s on day %d:\n got %+v\nwant %+v", batch, k.customer, k.day, a, want)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	// The bug this guards against: without KeepDays, a backfill keeps a
	// row per customer per batch.
	if lost := dailyRows(t, stream, 1000, false); len(lost) >= len(live) {
		t.Errorf("without KeepDays batches of 1000 give %d customer-days, live %d: the test does not see the loss", len(lost), len(live))
	} else {
		t.Logf("customer-days: live %d; a backfill in batches of 1000: %d with KeepDays, %d without", len(live), len(live), len(lost))
	}
}

// TestTakeClosedDaysOff: without KeepDays nothing is kept (the backtest
// never takes them), and TakeClosedDays empties what it hands out.
func TestTakeClosedDaysOff(t *testing.T) {
	stream := genStream(3, 10, 60, 0)
	e := NewEngine(pinnedConfig(), 3, wallAt(0))
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	n := 0
	e.TakeClosedDays(func(*event.Aggregate) { n++ })
	if n != 0 || e.days.n != 0 {
		t.Fatalf("%d rows kept without KeepDays", n)
	}
	e = NewEngine(pinnedConfig(), 3, wallAt(0))
	e.KeepDays()
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	kept := e.ClosedDays()
	e.TakeClosedDays(func(*event.Aggregate) { n++ })
	if n == 0 {
		t.Fatal("no end-of-day rows over 60 days without a TakeDirty")
	}
	if kept != n || e.ClosedDays() != 0 {
		t.Fatalf("ClosedDays %d before TakeClosedDays handed out %d, %d after", kept, n, e.ClosedDays())
	}
	m := 0
	e.TakeClosedDays(func(*event.Aggregate) { m++ })
	if m != 0 {
		t.Fatalf("%d rows handed out twice", m)
	}
}

// TestLateDayRows: when one input runs ahead of another (here every
// 30-day block's e-mail and support events are applied before its
// orders), each order comes after its customer's later days. The row of
// the order's own day is then written again (lateDay), so that every
// customer-day keeps exactly its own net orders and spend (DayOrders,
// DaySpend), and every day with a placed order is an order day of the
// views (last_order_at, first_order_at or DayOrders > 0 on that day).
func TestLateDayRows(t *testing.T) {
	stream := genStream(11, 60, 120, 0)
	const block = 30 * window.MsPerDay
	var ahead []srcEvent
	for i := 0; i < len(stream); {
		j := i
		for j < len(stream) && stream[j].ev.Time/block == stream[i].ev.Time/block {
			j++
		}
		for _, o := range []bool{false, true} {
			for _, se := range stream[i:j] {
				if (se.ev.Kind == event.KindOrder) == o {
					ahead = append(ahead, se)
				}
			}
		}
		i = j
	}
	type fig struct {
		n      int32
		cents  int64
		placed bool
	}
	want := map[dayKey]fig{}
	for _, se := range stream {
		if se.ev.Kind != event.KindOrder {
			continue
		}
		k := dayKey{se.ev.CustomerID, window.Day(se.ev.Time)}
		f := want[k]
		cents := int64(math.Round(math.Abs(se.ev.Amount) * 100))
		switch se.ev.OrderType {
		case event.OrderPlaced:
			f.n, f.cents, f.placed = f.n+1, f.cents+cents, true
		case event.OrderCancelled:
			f.n, f.cents = f.n-1, f.cents-cents
		case event.OrderRefunded:
			f.cents -= cents
		}
		want[k] = f
	}
	for _, batch := range []int{1, 50, len(ahead)} {
		rows := dailyRows(t, ahead, batch, true)
		orderDays := map[dayKey]bool{}
		for k, a := range rows {
			w := want[k]
			if a.DayOrders != w.n || math.Abs(a.DaySpend*100-float64(w.cents)) > 0.5 {
				t.Fatalf("batches of %d: %s on day %d: %d orders, %.2f spent; want %d, %.2f",
					batch, k.customer, k.day, a.DayOrders, a.DaySpend, w.n, float64(w.cents)/100)
			}
			for _, ms := range []int64{a.FirstOrderAt, a.LastOrderAt} {
				if ms != 0 {
					orderDays[dayKey{k.customer, window.Day(ms)}] = true
				}
			}
			if a.DayOrders > 0 {
				orderDays[k] = true
			}
		}
		for k, w := range want {
			if _, ok := rows[k]; !ok && (w.n != 0 || w.cents != 0) {
				t.Fatalf("batches of %d: no row for %s on day %d, which has %d orders", batch, k.customer, k.day, w.n)
			}
			if w.placed && !orderDays[k] {
				t.Fatalf("batches of %d: day %d of %s is not an order day", batch, k.day, k.customer)
			}
		}
	}
}
