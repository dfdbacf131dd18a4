package lapse

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// Backtest measures what happened after the triggers of a replayed
// history: did the customer order again, how soon. Feed it every emitted
// trigger and every order event, in any order, then ask for a Report. The
// zero value is ready to use.
type Backtest struct {
	seen      map[string]bool // trigger ids
	triggers  []btTrigger
	orders    map[string][]int64 // PLACED order times per customer
	recovered int
	end       int64
}

type btTrigger struct {
	customer string
	reason   event.Reason
	asOf     int64
	priority int32
}

// ObserveTrigger records an emitted trigger. WINBACK triggers are measured;
// RECOVERED ones are counted. A trigger id seen before is ignored (a
// replay may emit it again).
func (b *Backtest) ObserveTrigger(t *event.Trigger) {
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	if b.seen[t.TriggerID] {
		return
	}
	b.seen[t.TriggerID] = true
	b.end = max(b.end, t.AsOf)
	if t.Kind == event.TriggerRecovered {
		b.recovered++
		return
	}
	b.triggers = append(b.triggers, btTrigger{t.CustomerID, t.PrimaryReason, t.AsOf, t.Priority})
}

// ObserveOrder records an order event; only PLACED orders count as a
// return.
func (b *Backtest) ObserveOrder(ev *event.Event) {
	if ev.Kind != event.KindOrder {
		return
	}
	b.end = max(b.end, ev.Time)
	if ev.OrderType != event.OrderPlaced {
		return
	}
	if b.orders == nil {
		b.orders = map[string][]int64{}
	}
	b.orders[ev.CustomerID] = append(b.orders[ev.CustomerID], ev.Time)
}

// BacktestReport is the outcome of a backtest.
type BacktestReport struct {
	HorizonDays int
	End         int64          // the last event time observed (Unix ms)
	Reasons     []ReasonReport // by primary reason, in contract order, those that fired
	All         ReasonReport   // every WINBACK trigger
	Recovered   int            // RECOVERED triggers observed
	// Priority counts WINBACK triggers by priority: [0] is 1–10, [1]
	// 11–20, … [9] 91–100.
	Priority [10]int
}

// ReasonReport is the outcome of one reason's triggers.
type ReasonReport struct {
	Reason event.Reason // "" for All
	Fired  int
	// Returned counts triggers followed by an order within the horizon;
	// Open counts those without one whose horizon runs past the end of
	// the data (not yet judged).
	Returned, Open int
	ReturnedShare  float64 // Returned / Fired
	// NeverReturned counts triggers with no order after them until the
	// end of the data.
	NeverReturned      int
	NeverReturnedShare float64
	// MedianDaysToReturn is over the triggers followed by any order; 0 if
	// none.
	MedianDaysToReturn float64
}

// Report computes the outcome with a return horizon of horizonDays.
func (b *Backtest) Report(horizonDays int) BacktestReport {
	r := BacktestReport{HorizonDays: horizonDays, End: b.end, Recovered: b.recovered}
	for _, os := range b.orders {
		slices.Sort(os)
	}
	horizon := int64(horizonDays) * window.MsPerDay
	type acc struct {
		rep  ReasonReport
		days []float64
	}
	per := map[event.Reason]*acc{}
	all := &acc{}
	for _, t := range b.triggers {
		a := per[t.reason]
		if a == nil {
			a = &acc{rep: ReasonReport{Reason: t.reason}}
			per[t.reason] = a
		}
		os := b.orders[t.customer]
		i, _ := slices.BinarySearch(os, t.asOf+1)
		for _, x := range []*acc{a, all} {
			x.rep.Fired++
			switch {
			case i == len(os):
				x.rep.NeverReturned++
				if t.asOf+horizon > b.end {
					x.rep.Open++
				}
			default:
				d := os[i] - t.asOf
				x.days = append(x.days, float64(d)/float64(window.MsPerDay))
				if d <= horizon {
					x.rep.Returned++
				}
			}
		}
		p := min(max(int(t.priority)-1, 0)/10, 9)
		r.Priority[p]++
	}
	finish := func(x *acc) ReasonReport {
		rep := x.rep
		if rep.Fired > 0 {
			rep.ReturnedShare = float64(rep.Returned) / float64(rep.Fired)
			rep.NeverReturnedShare = float64(rep.NeverReturned) / float64(rep.Fired)
		}
		if len(x.days) > 0 {
			slices.Sort(x.days)
			m := len(x.days) / 2
			rep.MedianDaysToReturn = x.days[m]
			if len(x.days)%2 == 0 {
				rep.MedianDaysToReturn = (x.days[m-1] + x.days[m]) / 2
			}
		}
		return rep
	}
	for _, reason := range event.Reasons {
		if a := per[reason]; a != nil {
			r.Reasons = append(r.Reasons, finish(a))
		}
	}
	r.All = finish(all)
	return r
}

// String renders the report as a text table.
func (r BacktestReport) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Backtest: return horizon %d days, data until %s\n\n", r.HorizonDays, isoMilli(r.End))
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "reason\tfired\treturned ≤%dd\tshare\tnever returned\tshare\tmedian days to return\tnot yet judged\t\n", r.HorizonDays)
	row := func(name string, x ReasonReport) {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.1f%%\t%d\t%.1f%%\t%.1f\t%d\t\n", name, x.Fired, x.Returned, 100*x.ReturnedShare,
			x.NeverReturned, 100*x.NeverReturnedShare, x.MedianDaysToReturn, x.Open)
	}
	for _, x := range r.Reasons {
		row(string(x.Reason), x)
	}
	row("ALL", r.All)
	w.Flush()
	fmt.Fprintf(&sb, "\nRECOVERED triggers: %d\n\nPriority of WINBACK triggers:\n", r.Recovered)
	w = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "priority\ttriggers\tshare\t")
	for i, n := range r.Priority {
		share := 0.0
		if r.All.Fired > 0 {
			share = 100 * float64(n) / float64(r.All.Fired)
		}
		fmt.Fprintf(w, "%d–%d\t%d\t%.1f%%\t\n", 10*i+1, 10*i+10, n, share)
	}
	w.Flush()
	return sb.String()
}
