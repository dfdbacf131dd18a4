package bioracle

import (
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// TestOracleByHand checks the oracle on a history small enough to work out
// by hand (the figures in the comments).
func TestOracleByHand(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	o := New(30)
	for i, ev := range []event.Event{
		{Kind: event.KindOrder, CustomerID: "a", Time: at("2024-01-10 12:00:00"), OrderType: event.OrderPlaced, Amount: 10},
		{Kind: event.KindOrder, CustomerID: "b", Time: at("2024-02-05 08:00:00"), OrderType: event.OrderPlaced, Amount: 5},
		{Kind: event.KindOrder, CustomerID: "b", Time: at("2024-02-06 08:00:00"), OrderType: event.OrderRefunded, Amount: 5},
		{Kind: event.KindOrder, CustomerID: "a", Time: at("2024-02-20 23:59:59"), OrderType: event.OrderPlaced, Amount: 20},
		{Kind: event.KindEmail, CustomerID: "c", Time: at("2024-03-15 00:00:00"), EmailType: event.EmailDelivered},
	} {
		ev.EventID = string(rune('0' + i))
		o.Add(&ev)
		o.Add(&ev) // a repeat changes nothing
	}
	if o.Events() != 5 {
		t.Fatalf("%d events, want 5", o.Events())
	}
	for _, c := range []struct {
		v    View
		want []Row
	}{
		{o.Retention(Monthly), []Row{
			// January: nobody active at the start; a (new) at the end.
			{"2024-01-01", "2024-02-01", "1", "30", "0", "1", "1", "0", "0", "0", `\N`, `\N`},
			// February: a at both ends, b new: CRR (2 - 1) / 1.
			{"2024-02-01", "2024-03-01", "1", "30", "1", "2", "1", "1", "0", "0", "100", "0"},
			// March, running until the day after March 15: b's
			// order of February 5 is more than 30 days before.
			{"2024-03-01", "2024-04-01", "0", "30", "2", "1", "0", "1", "1", "0", "50", "50"},
		}},
		{o.KPI(Monthly), []Row{
			{"2024-01-01", "2024-02-01", "1", "1", "1", "1", "10", "10", "1", "0", "0", `\N`, `\N`},
			{"2024-02-01", "2024-03-01", "1", "2", "1", "2", "20", "10", "1", "1", "0", "0", `\N`},
			{"2024-03-01", "2024-04-01", "0", "0", "0", "0", "0", `\N`, `\N`, "2", "1", "50", `\N`},
		}},
		{o.CustomerKPIs(), []Row{{"3", "2", "1", "50", "3", "30", "10", "1.5", "15"}}},
	} {
		if err := Compare(c.v.Rows, c.want); err != nil {
			t.Errorf("%s: %v", c.v.Name, err)
		}
	}
	// Weeks: ISO weeks from Monday 2024-01-08 to the week of March 15.
	w := o.Retention(Weekly).Rows
	if len(w) != 10 || w[0][0] != "2024-01-08" || w[9][0] != "2024-03-11" || w[9][2] != "0" {
		t.Errorf("weeks: %d, first %v, last %v", len(w), w[0], w[len(w)-1])
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		got, want []Row
		ok        bool
	}{
		{[]Row{{"1", "0.30000000000000004"}}, []Row{{"1", "0.3"}}, true},
		{[]Row{{"2", "0.3"}}, []Row{{"1", "0.3"}}, false},
		{[]Row{{"1", "0.3001"}}, []Row{{"1", "0.3"}}, false},
		{[]Row{{`\N`}}, []Row{{"0"}}, false},
		{[]Row{{"1"}}, []Row{{"1"}, {"2"}}, false},
	} {
		if err := Compare(c.got, c.want); (err == nil) != c.ok {
			t.Errorf("Compare(%v, %v) = %v", c.got, c.want, err)
		}
	}
}

func TestFunnelByHand(t *testing.T) {
	day := int64(86400000)
	trigs := []Trigger{
		{ID: "w1", Kind: "WINBACK", Reason: "PURCHASE_LAPSE", Action: "WINBACK_OFFER", AsOf: 0},
		{ID: "w2", Kind: "WINBACK", Reason: "PURCHASE_LAPSE", Action: "WINBACK_OFFER", AsOf: day},
		{ID: "w3", Kind: "WINBACK", Reason: "PURCHASE_LAPSE", Action: "WINBACK_OFFER", AsOf: 2 * day},
		{ID: "w4", Kind: "WINBACK", Reason: "EMAIL_BOUNCED", Action: "CHANNEL_SWITCH", AsOf: 0},
		// The holdout: never acted on, so its return is no recovery.
		{ID: "w5", Kind: "WINBACK", Reason: "PURCHASE_LAPSE", Action: "WINBACK_OFFER", Treatment: "CONTROL", AsOf: 0},
		{ID: "r5", Kind: "RECOVERED", Original: "w5", Treatment: "CONTROL", AsOf: day, Revenue: 99},
		{ID: "r1", Kind: "RECOVERED", Original: "w1", AsOf: 10*day + 999, Revenue: 30}, // 10 days (whole seconds)
		{ID: "r2", Kind: "RECOVERED", Original: "w2", AsOf: 5 * day, Revenue: 12.5},    // 4 days
		{ID: "r2", Kind: "RECOVERED", Original: "w2", AsOf: 5 * day, Revenue: 12.5},    // the same trigger again
	}
	v, err := Funnel(trigs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{"PURCHASE_LAPSE", "WINBACK_OFFER", "3", "2", "66.66666666666667", "7", "42.5"},
		{"EMAIL_BOUNCED", "CHANNEL_SWITCH", "1", "0", "0", `\N`, "0"},
	}
	if err := Compare(v.Rows, want); err != nil {
		t.Error(err)
	}
	if _, err := Funnel(append(trigs, Trigger{ID: "r3", Kind: "RECOVERED", Original: "w1"})); err == nil {
		t.Error("two RECOVERED triggers of w1 accepted")
	}
}

// TestOracleEdgesByHand: the cases where the naive formulas break. With
// active_days shorter than a month, a customer new in it may have lapsed
// by its end; a month of cancellations alone has no buyers.
func TestOracleEdgesByHand(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli() + 12*3600*1000
	}
	add := func(o *Oracle, evs []event.Event) {
		for i, ev := range evs {
			ev.EventID = string(rune('a' + i))
			o.Add(&ev)
		}
	}
	order := func(c, day string, typ event.OrderType, amount float64) event.Event {
		return event.Event{Kind: event.KindOrder, CustomerID: c, Time: at(day), OrderType: typ, Amount: amount}
	}
	mail := func(c, day string) event.Event {
		return event.Event{Kind: event.KindEmail, CustomerID: c, Time: at(day), EmailType: event.EmailDelivered}
	}

	o := New(30)
	add(o, []event.Event{
		order("a", "2024-12-20", event.OrderPlaced, 10),
		order("b", "2025-01-01", event.OrderPlaced, 10), // new in January, lapsed by its end
		order("a", "2025-01-15", event.OrderPlaced, 10),
		mail("c", "2025-02-03"),
	})
	// January: S = {a}, E = {a}, N = {b}, of E none: CRR (1 - 0) / 1.
	if row := o.Retention(Monthly).Rows[1]; row[0] != "2025-01-01" || row[10] != "100" || row[11] != "0" {
		t.Errorf("January: %q, want CRR 100 and churn 0", row)
	}

	o = New(90)
	add(o, []event.Event{
		order("a", "2025-01-10", event.OrderPlaced, 100),
		order("c", "2025-02-15", event.OrderPlaced, 50),
		order("a", "2025-05-05", event.OrderCancelled, 100),
		mail("c", "2025-06-05"),
	})
	// May: no buyer, net orders -1, revenue -100, c lost: no AOV, no CLV.
	want := Row{"2025-05-01", "2025-06-01", "1", "0", "0", "-1", "-100", `\N`, `\N`, "1", "1", "100", `\N`}
	if err := Compare(o.KPI(Monthly).Rows[4:5], []Row{want}); err != nil {
		t.Errorf("May: %v", err)
	}
}
