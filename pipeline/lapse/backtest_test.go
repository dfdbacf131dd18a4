package lapse

import (
	"flag"
	"os"
	"testing"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestBacktestCounts(t *testing.T) {
	day := window.MsPerDay
	var b Backtest
	trig := func(id, cust string, r event.Reason, asOfDay int64, prio int32) {
		b.ObserveTrigger(&event.Trigger{TriggerID: id, CustomerID: cust, Kind: event.TriggerWinback, PrimaryReason: r, AsOf: asOfDay * day, Priority: prio})
	}
	order := func(cust string, atDay int64, typ event.OrderType) {
		b.ObserveOrder(&event.Event{Kind: event.KindOrder, CustomerID: cust, Time: atDay * day, OrderType: typ})
	}
	trig("t1", "a", event.ReasonPurchaseLapse, 100, 95)
	trig("t1", "a", event.ReasonPurchaseLapse, 100, 95) // replayed: counted once
	trig("t2", "b", event.ReasonPurchaseLapse, 100, 40)
	trig("t3", "c", event.ReasonPurchaseLapse, 190, 41)
	trig("t4", "d", event.ReasonSupportFriction, 50, 1)
	b.ObserveTrigger(&event.Trigger{TriggerID: "r1", CustomerID: "a", Kind: event.TriggerRecovered, AsOf: 110 * day})
	order("a", 90, event.OrderPlaced)     // before the trigger: not a return
	order("a", 110, event.OrderPlaced)    // 10 days after
	order("b", 150, event.OrderPlaced)    // 50 days after: outside 30 days
	order("b", 151, event.OrderCancelled) // not a return
	order("d", 60, event.OrderPlaced)     // 10 days after
	order("z", 200, event.OrderPlaced)    // the end of the data
	r := b.Report(30)
	if r.End != 200*day || r.Recovered != 1 || r.All.Fired != 4 {
		t.Fatalf("report: end %d recovered %d fired %d", r.End, r.Recovered, r.All.Fired)
	}
	if len(r.Reasons) != 2 || r.Reasons[0].Reason != event.ReasonPurchaseLapse {
		t.Fatalf("reasons %+v", r.Reasons)
	}
	l := r.Reasons[0]
	want := ReasonReport{Reason: event.ReasonPurchaseLapse, Fired: 3, Returned: 1, Open: 1, ReturnedShare: 1.0 / 3,
		NeverReturned: 1, NeverReturnedShare: 1.0 / 3, MedianDaysToReturn: 30}
	if l != want {
		t.Fatalf("lapse report\n got %+v\nwant %+v", l, want)
	}
	if r.Priority != [10]int{1, 0, 0, 1, 1, 0, 0, 0, 0, 1} {
		t.Fatalf("priority buckets %v", r.Priority)
	}
}

func TestBacktestGolden(t *testing.T) {
	stream := genStream(11, 400, 300, 0)
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	var b Backtest
	for i := range stream {
		out, _, _ := e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
		b.ObserveOrder(&stream[i].ev)
		for j := range out {
			b.ObserveTrigger(&out[j])
		}
	}
	got := b.Report(30).String()
	const golden = "testdata/backtest.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("report differs from %s (run with -update if intended):\n%s", golden, got)
	}
}
