package gen_test

import (
	"math"
	"slices"
	"testing"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
)

// history is one customer's valid events, in order.
type history struct {
	placed  []event.Event
	orders  []event.Event
	email   []event.Event
	support []event.Event
}

func histories(t *testing.T, g *gen.Generator) map[string]*history {
	t.Helper()
	hs := map[string]*history{}
	for _, tr := range g.Truth() {
		hs[tr.CustomerID] = &history{}
	}
	err := g.Each(func(r *gen.Record) error {
		if r.Malformed != nil || r.Duplicate {
			return nil
		}
		h := hs[r.Event.CustomerID]
		switch r.Kind {
		case event.KindOrder:
			h.orders = append(h.orders, r.Event)
			if isPlaced(&r.Event) {
				h.placed = append(h.placed, r.Event)
			}
		case event.KindEmail:
			h.email = append(h.email, r.Event)
		case event.KindSupport:
			h.support = append(h.support, r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// net spend of orders in [from, to).
func spend(h *history, from, to int64) float64 {
	var s float64
	for _, o := range h.orders {
		if o.Time < from || o.Time >= to {
			continue
		}
		if o.OrderType == event.OrderPlaced {
			s += o.Amount
		} else {
			s -= o.Amount
		}
	}
	return s
}

// openRate is opens per delivery of e-mails delivered in [from, to).
func openRate(h *history, from, to int64) (rate float64, delivered int) {
	opened := map[string]bool{}
	var cmps []string
	for _, e := range h.email {
		switch e.EmailType {
		case event.EmailDelivered:
			if e.Time >= from && e.Time < to {
				cmps = append(cmps, e.CampaignID)
			}
		case event.EmailOpened:
			opened[e.CampaignID] = true
		}
	}
	n := 0
	for _, c := range cmps {
		if opened[c] {
			n++
		}
	}
	if len(cmps) == 0 {
		return 0, 0
	}
	return float64(n) / float64(len(cmps)), len(cmps)
}

func maxGap(ts []event.Event) int64 {
	var m int64
	for i := 1; i < len(ts); i++ {
		m = max(m, ts[i].Time-ts[i-1].Time)
	}
	return m
}

// TestTruthConsistency checks that every archetype's events show what its
// truth claims.
func TestTruthConsistency(t *testing.T) {
	g := newGen(t, gen.Config{Customers: 1400, Days: 365, Seed: 11})
	from, to := g.Range()
	start, end := from.UnixMilli(), to.UnixMilli()
	hs := histories(t, g)
	seen := map[gen.Archetype]int{}
	for _, tr := range g.Truth() {
		h := hs[tr.CustomerID]
		seen[tr.Archetype]++
		errorf := func(format string, args ...any) {
			t.Helper()
			t.Errorf("%s (%s): "+format, append([]any{tr.CustomerID, tr.Archetype}, args...)...)
		}
		if tr.Orders != len(h.placed) {
			errorf("truth says %d orders, stream has %d", tr.Orders, len(h.placed))
		}
		I := int64(tr.IntervalDays * float64(day))
		switch tr.Archetype {
		case gen.SteadyWeekly, gen.SteadyBiweekly, gen.SteadyMonthly:
			base := map[gen.Archetype]float64{gen.SteadyWeekly: 7, gen.SteadyBiweekly: 14, gen.SteadyMonthly: 28}[tr.Archetype]
			if math.Abs(tr.IntervalDays/base-1) > 0.06 {
				errorf("interval %.1f days, want about %v", tr.IntervalDays, base)
			}
			if g := maxGap(h.placed); float64(g) > 1.5*float64(I) {
				errorf("gap of %.1f days, interval %.1f", float64(g)/float64(day), tr.IntervalDays)
			}
			if first := h.placed[0].Time; first-start > I+I/5 {
				errorf("first order after %.1f days", float64(first-start)/float64(day))
			}
			if last := h.placed[len(h.placed)-1].Time; end-last > I+I/5 {
				errorf("last order %.1f days before the end", float64(end-last)/float64(day))
			}
			checkQuietSupport(t, errorf, h)
			checkSubscribed(errorf, h)
			checkSteadySpend(errorf, h, start)
			checkSteadyOpens(errorf, h, start, end)

		case gen.Lapser:
			if tr.LapseStart == 0 {
				errorf("no LapseStart")
				break
			}
			if last := h.placed[len(h.placed)-1].Time; last != tr.LapseStart {
				errorf("last order at %d, LapseStart %d", last, tr.LapseStart)
			}
			if silence := end - tr.LapseStart; silence < 3*I {
				errorf("silence of %.1f intervals", float64(silence)/float64(I))
			}
			if !tr.Expects(event.ReasonPurchaseLapse) {
				errorf("does not expect PURCHASE_LAPSE")
			}
			if g := maxGap(h.placed); float64(g) > 1.5*float64(I) {
				errorf("gap of %.1f days before the lapse, interval %.1f", float64(g)/float64(day), tr.IntervalDays)
			}
			checkQuietSupport(t, errorf, h)

		case gen.Returner:
			if tr.LapseStart == 0 || tr.ReturnAt == 0 {
				errorf("LapseStart %d, ReturnAt %d", tr.LapseStart, tr.ReturnAt)
				break
			}
			i := slices.IndexFunc(h.placed, func(e event.Event) bool { return e.Time == tr.LapseStart })
			if i < 0 || i+1 >= len(h.placed) || h.placed[i+1].Time != tr.ReturnAt {
				errorf("orders around the silence do not match LapseStart and ReturnAt")
				break
			}
			if silence := tr.ReturnAt - tr.LapseStart; silence < 4*I {
				errorf("silence of %.1f intervals", float64(silence)/float64(I))
			}
			if !tr.Expects(event.ReasonPurchaseLapse) || !tr.ExpectsRecovery() {
				errorf("expects %v", tr.Expect)
			}
			if n := len(h.placed) - i - 1; n < 2 {
				errorf("%d orders after the return", n)
			}

		case gen.EmailDisengager:
			before, _ := openRate(h, start, end-130*day) // the fade starts 130 days before the end
			after, n := openRate(h, end-28*day, end)
			if before < 0.38 || after > 0.15 || n < 4 {
				errorf("open rate %.2f before, %.2f over the last 28 days (%d e-mails)", before, after, n)
			}
			if end-h.placed[len(h.placed)-1].Time > 40*day {
				errorf("stopped buying")
			}
			checkSubscribed(errorf, h)

		case gen.Unsubscriber, gen.Bouncer:
			want := map[gen.Archetype][]event.EmailType{
				gen.Unsubscriber: {event.EmailUnsubscribed, event.EmailComplained},
				gen.Bouncer:      {event.EmailBounced},
			}[tr.Archetype]
			i := slices.IndexFunc(h.email, func(e event.Event) bool { return slices.Contains(want, e.EmailType) })
			if i < 0 {
				errorf("no %v event", want)
				break
			}
			e := tr.Expect[0]
			if at := h.email[i].Time; at < e.From || at > e.By {
				errorf("%v at %d, expected in [%d, %d]", h.email[i].EmailType, at, e.From, e.By)
			}
			for _, later := range h.email[i+1:] {
				if later.EmailType == event.EmailSent {
					errorf("e-mailed after %v", h.email[i].EmailType)
					break
				}
			}

		case gen.SupportFriction:
			var opened []int64
			complaint, reopened := false, false
			for _, s := range h.support {
				switch s.SupportType {
				case event.SupportOpened:
					opened = append(opened, s.Time)
					complaint = complaint || s.Category == "complaint"
				case event.SupportReopened:
					reopened = true
				case event.SupportResolved:
					if (s.CSAT != event.NoScore && s.CSAT <= 2) || (s.NPS != event.NoScore && s.NPS <= 6) {
						errorf("a low score (CSAT %d, NPS %d) plants LOW_SATISFACTION too", s.CSAT, s.NPS)
					}
				}
			}
			burst := 0
			for i := range opened {
				n := 0
				for _, o := range opened[i:] {
					if o-opened[i] <= 20*day {
						n++
					}
				}
				burst = max(burst, n)
			}
			if burst < 3 || !complaint || !reopened {
				errorf("%d tickets in 20 days, complaint %v, reopened %v", burst, complaint, reopened)
			}

		case gen.LowSatisfaction:
			low := 0
			for _, s := range h.support {
				if s.SupportType == event.SupportResolved && ((s.CSAT != event.NoScore && s.CSAT <= 2) || (s.NPS != event.NoScore && s.NPS <= 6)) {
					low++
					if e := tr.Expect[0]; s.Time < e.From || s.Time > e.By {
						errorf("low score at %d, expected in [%d, %d]", s.Time, e.From, e.By)
					}
				}
				if s.SupportType == event.SupportReopened || s.Category == "complaint" {
					errorf("friction planted too")
				}
			}
			if low != 1 {
				errorf("%d low scores, want 1", low)
			}

		case gen.SpendDecliner:
			last := spend(h, end-90*day, end)
			prev := spend(h, end-180*day, end-90*day)
			if last > 0.4*prev {
				errorf("spend %.0f in the last 90 days, %.0f in the 90 before", last, prev)
			}
			if g := maxGap(h.placed); float64(g) > 1.5*float64(I) {
				errorf("gap of %.1f days, interval %.1f", float64(g)/float64(day), tr.IntervalDays)
			}
			// Judged at its last order, the decline is far below half.
			if r := lastSpendRatio(h, start); r > 0.4 {
				errorf("90-day spend %.2f of the 90 days before at the last order", r)
			}

		case gen.NewCustomer:
			if len(h.placed) == 0 || len(h.placed) > 3 || h.placed[0].Time < end-45*day {
				errorf("%d orders, first %.0f days before the end", len(h.placed), float64(end-h.placed[0].Time)/float64(day))
			}
			if last := h.placed[len(h.placed)-1].Time; end-last > 6*day {
				errorf("last order %.1f days before the end", float64(end-last)/float64(day))
			}
			if len(h.email) > 0 && h.email[0].Time < h.placed[0].Time {
				errorf("e-mailed before the first order")
			}

		case gen.OneTimeBuyer:
			if len(h.placed) != 1 {
				errorf("%d orders", len(h.placed))
			}

		case gen.Seasonal:
			// Each year's orders fall within one season of 40 days.
			byYear := map[int][]int64{}
			for _, o := range h.placed {
				y := o.EventTime().Year()
				byYear[y] = append(byYear[y], o.Time)
			}
			for y, ts := range byYear {
				if ts[len(ts)-1]-ts[0] > 41*day {
					errorf("orders of %d spread over %.0f days", y, float64(ts[len(ts)-1]-ts[0])/float64(day))
				}
			}
		}
	}
	for _, a := range gen.Archetypes() {
		if seen[a] == 0 {
			t.Errorf("no %s customer", a)
		}
	}
}

// checkQuietSupport: only a rare, satisfied, non-complaint ticket.
func checkQuietSupport(t *testing.T, errorf func(string, ...any), h *history) {
	t.Helper()
	var opened []int64
	for _, s := range h.support {
		switch {
		case s.SupportType == event.SupportReopened:
			errorf("ticket reopened")
		case s.Category == "complaint":
			errorf("complaint ticket")
		case s.CSAT != event.NoScore && s.CSAT < 4, s.NPS != event.NoScore && s.NPS < 8:
			errorf("score CSAT %d NPS %d", s.CSAT, s.NPS)
		case s.SupportType == event.SupportOpened:
			opened = append(opened, s.Time)
		}
	}
	for i := 1; i < len(opened); i++ {
		if opened[i]-opened[i-1] < 45*day {
			errorf("two tickets %.0f days apart", float64(opened[i]-opened[i-1])/float64(day))
		}
	}
}

func checkSubscribed(errorf func(string, ...any), h *history) {
	for _, e := range h.email {
		switch e.EmailType {
		case event.EmailBounced, event.EmailUnsubscribed, event.EmailComplained:
			errorf("e-mail %v", e.EmailType)
		}
	}
}

// spendRatioAt returns the ratio of 90-day net spend to the 90 days
// before that an engine judging at order event i sees, with windows of
// whole UTC days as pipeline/window keeps them; ok is false unless the
// earlier window holds at least 3 orders and the later at least 2 (what
// lapse.DefaultConfig requires to judge).
func spendRatioAt(h *history, start int64, i int) (ratio float64, d int64, ok bool) {
	dayOf := func(t int64) int64 { return (t - start) / day }
	d = dayOf(h.orders[i].Time)
	var c90, cPrev float64
	var n90, nPrev int
	for _, x := range h.orders[:i+1] {
		xd := dayOf(x.Time)
		v := x.Amount
		if x.OrderType != event.OrderPlaced {
			v = -v
		}
		placed := 0
		if x.OrderType == event.OrderPlaced {
			placed = 1
		}
		switch {
		case xd > d-90 && xd <= d:
			c90 += v
			n90 += placed
		case xd > d-180 && xd <= d-90:
			cPrev += v
			nPrev += placed
		}
	}
	if nPrev < 3 || n90 < 2 || cPrev <= 0 {
		return 0, d, false
	}
	return c90 / cPrev, d, true
}

// minSpendRatio returns the lowest spendRatioAt over all order events.
func minSpendRatio(h *history, start int64) (ratio float64, at int64) {
	ratio = math.Inf(1)
	for i := range h.orders {
		if r, d, ok := spendRatioAt(h, start, i); ok && r < ratio {
			ratio, at = r, d
		}
	}
	return ratio, at
}

// lastSpendRatio is spendRatioAt the last order event (+Inf if not judged).
func lastSpendRatio(h *history, start int64) float64 {
	if r, _, ok := spendRatioAt(h, start, len(h.orders)-1); ok {
		return r
	}
	return math.Inf(1)
}

// checkSteadySpend: the 90-day spend stays at least 10% above the decline
// threshold (half the 90 days before).
func checkSteadySpend(errorf func(string, ...any), h *history, start int64) {
	if r, d := minSpendRatio(h, start); r < 0.55 {
		errorf("90-day spend %.2f of the 90 days before at day %d", r, d)
	}
}

// checkSteadyOpens: the 30-day open rate stays near the long-run rate.
func checkSteadyOpens(errorf func(string, ...any), h *history, start, end int64) {
	all, _ := openRate(h, start, end)
	for t := start + 60*day; t <= end; t += day {
		r, n := openRate(h, t-30*day, t)
		if n >= 3 && r < 0.6*all {
			errorf("30-day open rate %.2f (%d e-mails) against %.2f overall, day %d", r, n, all, (t-start)/day)
			return
		}
	}
}
