package lapse

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// srcEvent is an input event with its source.
type srcEvent struct {
	src int
	ev  event.Event
}

const grid = 10 * time.Minute

var genStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// genStream generates a realistic, deterministic mixed stream for n
// customers over the given days, sorted by event time, on a 10-minute grid:
// weekly to monthly buyers who may stop, shrink their baskets or come back;
// two campaigns a week that some stop opening or unsubscribe from; a few
// support tickets, some reopened, some left open, some with low scores;
// refunds and cancellations. dupShare of the events are repeated with the
// same event id.
func genStream(seed uint64, n, days int, dupShare float64) []srcEvent {
	return genStreamFrom(seed, 0, n, days, dupShare)
}

// genStreamFrom is genStream for customers first … first+n-1.
func genStreamFrom(seed uint64, first, n, days int, dupShare float64) []srcEvent {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []srcEvent
	end := genStart.Add(time.Duration(days) * 24 * time.Hour)
	at := func(t time.Time) int64 { return t.Truncate(grid).UnixMilli() }
	seq := 0
	add := func(src int, ev event.Event) {
		seq++
		ev.EventID = fmt.Sprintf("%s-%d", ev.CustomerID, seq)
		if ev.Kind != event.KindSupport {
			ev.CSAT, ev.NPS = event.NoScore, event.NoScore
		}
		out = append(out, srcEvent{src, ev})
	}
	for i := first; i < first+n; i++ {
		id := fmt.Sprintf("c%06d", i)
		interval := []float64{7, 7, 14, 30, 30, 45}[r.IntN(6)]
		amount := 20 + r.Float64()*120
		stopAt := end.Add(time.Hour)
		if r.IntN(4) == 0 {
			stopAt = genStart.Add(time.Duration(r.IntN(days)) * 24 * time.Hour)
		}
		resume := r.IntN(3) == 0
		shrink := r.IntN(8) == 0
		t := genStart.Add(time.Duration(r.Float64()*interval*24) * time.Hour)
		for k := 0; t.Before(end); k++ {
			if t.After(stopAt) {
				if !resume {
					break
				}
				t = t.Add(time.Duration(interval*3*24) * time.Hour)
				resume = false
				continue
			}
			a := amount * (0.8 + 0.4*r.Float64())
			if shrink && t.After(genStart.Add(time.Duration(days/2)*24*time.Hour)) {
				a *= 0.2
			}
			add(SourceOrders, event.Event{Kind: event.KindOrder, CustomerID: id, Time: at(t), OrderType: event.OrderPlaced,
				OrderID: fmt.Sprintf("o%d", seq), Amount: float64(int(a*100)) / 100, Currency: "EUR", Items: 1})
			if r.IntN(40) == 0 {
				add(SourceOrders, event.Event{Kind: event.KindOrder, CustomerID: id, Time: at(t.Add(48 * time.Hour)),
					OrderType: []event.OrderType{event.OrderCancelled, event.OrderRefunded}[r.IntN(2)], Amount: float64(int(a*50)) / 100, Currency: "EUR"})
			}
			t = t.Add(time.Duration(interval*(0.85+0.3*r.Float64())*24) * time.Hour)
		}
		// E-mail: two campaigns a week.
		openP := 0.2 + 0.5*r.Float64()
		fadeAt := end.Add(time.Hour)
		if r.IntN(6) == 0 {
			fadeAt = genStart.Add(time.Duration(days/2+r.IntN(days/2)) * 24 * time.Hour)
		}
		unsubAt := end.Add(time.Hour)
		if r.IntN(15) == 0 {
			unsubAt = genStart.Add(time.Duration(r.IntN(days)) * 24 * time.Hour)
		}
		bounce := r.IntN(30) == 0
		for w, acc := 0, r.Float64(); ; w++ {
			for _, off := range []time.Duration{24*time.Hour + 9*time.Hour, 4*24*time.Hour + 17*time.Hour} {
				ct := genStart.Add(time.Duration(w)*7*24*time.Hour + off)
				if !ct.Before(end) || ct.After(unsubAt.Add(24*time.Hour)) {
					continue
				}
				cmp := fmt.Sprintf("cmp%d-%d", w, off/time.Hour)
				add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct), EmailType: event.EmailSent, CampaignID: cmp})
				if bounce && ct.After(genStart.Add(time.Duration(days/3)*24*time.Hour)) {
					add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct.Add(grid)), EmailType: event.EmailBounced, CampaignID: cmp})
					continue
				}
				add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct.Add(grid)), EmailType: event.EmailDelivered, CampaignID: cmp})
				p := openP
				if ct.After(fadeAt) {
					p = 0.02
				}
				if acc += p; acc >= 1 {
					acc--
					add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct.Add(3 * time.Hour)), EmailType: event.EmailOpened, CampaignID: cmp})
					if r.IntN(4) == 0 {
						add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct.Add(3*time.Hour + grid)), EmailType: event.EmailClicked, CampaignID: cmp})
					}
				}
				if ct.After(unsubAt) {
					add(SourceEmail, event.Event{Kind: event.KindEmail, CustomerID: id, Time: at(ct.Add(4 * time.Hour)),
						EmailType: []event.EmailType{event.EmailUnsubscribed, event.EmailComplained}[r.IntN(2)], CampaignID: cmp})
					unsubAt = end.Add(-365 * 24 * time.Hour * 10)
				}
			}
			if genStart.Add(time.Duration(w) * 7 * 24 * time.Hour).After(end) {
				break
			}
		}
		// Support tickets.
		// Most customers open no ticket in half a year; a few have a run
		// of them.
		nt := 0
		switch x := r.IntN(20); {
		case x < 5:
			nt = 1
		case x < 7:
			nt = 2
		case x == 7:
			nt = 4
		}
		for k := range nt {
			ot := genStart.Add(time.Duration(r.Float64()*float64(days)) * 24 * time.Hour)
			tid := fmt.Sprintf("t%d", k)
			cat := []string{"delivery", "billing", "product", "complaint"}[r.IntN(4)]
			if r.IntN(3) != 0 && cat == "complaint" {
				cat = "account"
			}
			sev := event.Event{Kind: event.KindSupport, CustomerID: id, TicketID: tid, Category: cat,
				Priority: event.TicketPriority(1 + r.IntN(4)), CSAT: event.NoScore, NPS: event.NoScore}
			e := sev
			e.Time, e.SupportType = at(ot), event.SupportOpened
			add(SourceSupport, e)
			if r.IntN(8) == 0 {
				continue // never resolved
			}
			e = sev
			e.Time, e.SupportType = at(ot.Add(time.Duration(1+r.IntN(100))*time.Hour)), event.SupportResolved
			if r.IntN(2) == 0 {
				e.CSAT = int8(1 + r.IntN(5))
			}
			if r.IntN(4) == 0 {
				e.NPS = int8(r.IntN(11))
			}
			add(SourceSupport, e)
			if r.IntN(6) == 0 {
				e = sev
				e.Time, e.SupportType = at(ot.Add(time.Duration(120+r.IntN(100))*time.Hour)), event.SupportReopened
				add(SourceSupport, e)
			}
		}
	}
	// Sort by time (stable) through an index: the events are big.
	idx := make([]int32, len(out))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		ta, tb := out[a].ev.Time, out[b].ev.Time
		switch {
		case ta < tb:
			return -1
		case ta > tb:
			return 1
		}
		return int(a - b)
	})
	sorted := make([]srcEvent, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	out = sorted
	if dupShare > 0 {
		var withDups []srcEvent
		for _, e := range out {
			withDups = append(withDups, e)
			if r.Float64() < dupShare {
				withDups = append(withDups, e)
			}
		}
		out = withDups
	}
	return out
}
