package lapse_test

import (
	"fmt"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// A weekly buyer goes silent: once the watermark passes twice the usual
// interval after the last order, Apply fires PURCHASE_LAPSE; the next order
// closes the episode with RECOVERED.
func ExampleEngine() {
	day := 24 * time.Hour
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	e := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	var out []event.Trigger
	apply := func(src int, ev event.Event) {
		ev.CSAT, ev.NPS = event.NoScore, event.NoScore
		out, _, _ = e.Apply(out, src, &ev, wall)
	}
	n := 0
	order := func(at time.Time) {
		n++
		apply(lapse.SourceOrders, event.Event{Kind: event.KindOrder, EventID: fmt.Sprint("o", n), CustomerID: "c1",
			Time: at.UnixMilli(), OrderType: event.OrderPlaced, Amount: 42, Currency: "EUR"})
	}
	for i := range 8 {
		order(start.Add(time.Duration(i) * 7 * day))
	}
	// E-mail and support have said nothing for longer than the idle
	// timeout: they no longer hold the watermark back.
	wall = wall.Add(5 * time.Minute)
	// Another customer's e-mail three weeks after c1's last order moves
	// the watermark past c1's lapse due (14 days after it).
	apply(lapse.SourceEmail, event.Event{Kind: event.KindEmail, EventID: "m1", CustomerID: "c2",
		Time: start.Add(70 * day).UnixMilli(), EmailType: event.EmailDelivered})
	order(start.Add(80 * day))
	for _, t := range out {
		fmt.Println(t.Kind, t.PrimaryReason, t.RecommendedAction, time.UnixMilli(t.AsOf).UTC().Format(time.DateOnly))
		if t.Kind == event.TriggerWinback {
			fmt.Println("  usual interval", t.Evidence["usual_interval_days"], "silence", t.Evidence["days_since_last_order"])
		} else {
			fmt.Println("  days to return", t.Evidence["days_to_return"], "revenue", t.Evidence["revenue"])
		}
	}
	// Output:
	// WINBACK PURCHASE_LAPSE WINBACK_OFFER 2026-03-09
	//   usual interval 7 silence 14
	// RECOVERED PURCHASE_LAPSE LOYALTY_REWARD 2026-03-26
	//   days to return 17 revenue 42
}

// A backtest: what happened after the triggers?
func ExampleBacktest() {
	var b lapse.Backtest
	day := int64(24 * time.Hour / time.Millisecond)
	b.ObserveTrigger(&event.Trigger{TriggerID: "t1", CustomerID: "c1", Kind: event.TriggerWinback,
		PrimaryReason: event.ReasonPurchaseLapse, AsOf: 100 * day, Priority: 37})
	b.ObserveOrder(&event.Event{Kind: event.KindOrder, CustomerID: "c1", Time: 112 * day, OrderType: event.OrderPlaced})
	r := b.Report(30)
	fmt.Printf("%s fired %d, returned within 30 days %.0f%%, median %.0f days\n",
		r.Reasons[0].Reason, r.Reasons[0].Fired, 100*r.Reasons[0].ReturnedShare, r.Reasons[0].MedianDaysToReturn)
	// Output:
	// PURCHASE_LAPSE fired 1, returned within 30 days 100%, median 12 days
}
