package gen

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/winback/winback/pipeline/event"
)

// planner builds one customer's plan and truth.
type planner struct {
	g     *Generator
	r     *rand.Rand
	start int64
	end   int64
	span  float64 // days
}

// atHour moves t to hour h (fractional) of its UTC day.
func atHour(t int64, h float64) int64 {
	return t - mod(t, msDay) + int64(h*float64(msHour))
}

func (pl *planner) common(a Archetype) plan {
	r := pl.r
	p := plan{
		arch:      a,
		currency:  pick(r, currencies, []float64{0.55, 0.30, 0.15}),
		amount:    math.Min(math.Max(lognormal(r, 45, 0.5), 8), 400),
		hour:      uniform(r, 8, 21),
		jitter:    orderJitter,
		sigma:     amountSigma,
		refund:    maxRefund,
		emailFrom: pl.start,
		openP:     uniform(r, 0.40, 0.60),
		clickP:    uniform(r, 0.15, 0.35),
		ticketGap: backgroundTicketMean,
	}
	return p
}

var rhythms = []float64{7, 14, 30}

// rhythm gives p a personal interval around base and a first order within
// the first interval.
func (pl *planner) rhythm(p *plan, base float64) {
	p.interval = base * uniform(pl.r, 0.95, 1.05)
	p.jitter, p.sigma, p.refund = orderJitter, amountSigma, maxRefund
	if base >= 28 {
		p.interval = uniform(pl.r, monthlyMin, monthlyMax)
		p.jitter, p.sigma, p.refund = monthlyJitter, monthlySigma, monthlyRefund
	}
	p.firstOrder = atHour(pl.start+days(uniform(pl.r, 0, p.interval)), p.hour)
	if p.firstOrder < pl.start {
		p.firstOrder += msDay
	}
}

// fitRhythm picks a random rhythm among those whose needed span (in
// intervals, plus extra days) fits the data, or the shortest if none fits.
func (pl *planner) fitRhythm(p *plan, intervals, extraDays float64, spendSafe bool) bool {
	var fit []float64
	for _, b := range rhythms {
		if b*1.05*(intervals+1)+extraDays <= pl.span && !(spendSafe && b >= 28) {
			fit = append(fit, b)
		}
	}
	if len(fit) == 0 {
		pl.rhythm(p, rhythms[0])
		return false
	}
	pl.rhythm(p, fit[pl.r.IntN(len(fit))])
	return true
}

// replay runs the plan's order clock and returns the order times.
func (pl *planner) replay(idx int, p *plan) []int64 {
	c := newOrderClock(p, newRand(pl.g.cfg.Seed, idx, streamOrderTimes), pl.end)
	var ts []int64
	for {
		t, ok := c.peek()
		if !ok {
			return ts
		}
		ts = append(ts, t)
		c.advance()
	}
}

// campaignAfter returns the send time of the first campaign at or after t,
// or 0.
func (pl *planner) campaignAfter(t int64) int64 {
	i := pl.g.firstCampaign(t)
	if i >= len(pl.g.campaigns) {
		return 0
	}
	return pl.g.campaigns[i].at
}

func (pl *planner) plan(idx int, a Archetype) (plan, Truth) {
	r := pl.r
	p := pl.common(a)
	tr := Truth{CustomerID: customerID(idx), Archetype: a}
	expect := func(k event.TriggerKind, reason event.Reason, from, by int64) {
		tr.Expect = append(tr.Expect, ExpectedSignal{Kind: k, Reason: reason, From: from, By: by})
	}
	allow := func(rs ...event.Reason) { tr.Allow = append(tr.Allow, rs...) }
	clampIn := func(t, lo, hi int64) int64 { return max(lo, min(t, hi)) }
	S, E := pl.start, pl.end

	switch a {
	case SteadyWeekly, SteadyBiweekly, SteadyMonthly:
		base := map[Archetype]float64{SteadyWeekly: 7, SteadyBiweekly: 14, SteadyMonthly: 30}[a]
		pl.rhythm(&p, base)
		tr.MustNotTrigger = true

	case Seasonal:
		// A few purchases around one season each year, nothing in
		// between. A year of data cannot teach an annual rhythm, so a
		// correct engine may well call the long silence a lapse.
		centre := pick(r, []float64{340, 182, 80, 250}, []float64{0.5, 0.25, 0.15, 0.1})
		y0 := yearStart(S)
		for y := y0; y < E; y = yearStart(y + 400*msDay) {
			n := 3 + r.IntN(3)
			c := y + days(centre)
			for range n {
				t := atHour(c+days(uniform(r, -20, 20)), p.hour+uniform(r, -2, 2))
				if t >= S && t < E {
					p.times = append(p.times, t)
				}
			}
		}
		slices.Sort(p.times)
		allow(event.ReasonPurchaseLapse, event.ReasonSpendDecline)

	case Lapser:
		ok := pl.fitRhythm(&p, historyOrders+lapseSilenceMin, 7, false)
		I := p.interval
		maxSilence := math.Min(lapseSilenceMax*I, pl.span-(historyOrders+1)*I)
		silence := uniform(r, lapseSilenceMin*I, math.Max(maxSilence, lapseSilenceMin*I))
		p.pauseAt = E - days(silence)
		// A long silence ends in a spend decline too, and e-mails to a
		// customer who stopped buying may or may not go unread.
		allow(event.ReasonSpendDecline)
		if !ok {
			allow(event.ReasonPurchaseLapse)
		}

	case EmailDisengager:
		ok := pl.fitRhythm(&p, 0, disengageDays+60, false)
		p.openP = uniform(r, 0.45, 0.60)
		p.disengageAt = E - days(disengageDays)
		if ok && p.disengageAt > S {
			// After the ramp nearly every e-mail goes unopened. The
			// engine's sequential test (engagement_decline.cusum_threshold
			// 8 nats, about 0.4–0.6 nats per unopened e-mail against a
			// 45–60% baseline less its margin) needs 15–25 of them, at
			// two e-mails a week 50–90 days, and a late open or a low
			// baseline at the run's start adds a few weeks: 115 days
			// after the ramp leaves a margin.
			expect(event.TriggerWinback, event.ReasonEngagementDecline,
				p.disengageAt, p.disengageAt+days(disengageRampDays+115))
		} else {
			allow(event.ReasonEngagementDecline)
		}

	case Unsubscriber, Bouncer:
		pl.fitRhythm(&p, 0, 0, false)
		at := clampIn(S+days(uniform(r, 0.35, 0.85)*pl.span), S+days(21), E-days(14))
		reason := event.ReasonEmailUnsubscribed
		if a == Unsubscriber {
			p.unsubAt = at
			p.unsubType = pick(r, []event.EmailType{event.EmailUnsubscribed, event.EmailComplained}, []float64{0.7, 0.3})
		} else {
			p.bounceAt = at
			reason = event.ReasonEmailBounced
		}
		// No more e-mails reach them: the open rate cannot be judged.
		allow(event.ReasonEngagementDecline)
		if sent := pl.campaignAfter(at); sent > 0 && sent < E-days(3) {
			expect(event.TriggerWinback, reason, sent, sent+days(1))
		} else {
			allow(reason)
		}

	case SupportFriction:
		pl.fitRhythm(&p, 0, 0, false)
		at := clampIn(S+days(uniform(r, 0.4, 0.9)*pl.span), S+days(7), E-days(30))
		n := frictionTickets + r.IntN(3)
		offs := make([]float64, n)
		for i := 1; i < n; i++ {
			offs[i] = uniform(r, 0.5, 18)
		}
		slices.Sort(offs)
		reopen := r.IntN(n)
		complaint := r.IntN(n)
		for i, o := range offs {
			tp := ticketPlan{
				at:           atHour(at+days(o), uniform(r, 7, 22)),
				category:     pick(r, []string{"delivery", "product", "billing", "account"}, []float64{0.4, 0.3, 0.2, 0.1}),
				priority:     pick(r, []event.TicketPriority{event.PriorityNormal, event.PriorityHigh, event.PriorityUrgent}, []float64{0.3, 0.5, 0.2}),
				resolveAfter: uniform(r, 1, 5),
				reopen:       i == reopen || r.Float64() < 0.2,
				csat:         event.NoScore,
				nps:          event.NoScore,
			}
			if i == complaint {
				tp.category = "complaint"
			}
			// Frustrated but not (yet) dissatisfied on the survey.
			if r.Float64() < 0.4 {
				tp.csat = 3
			}
			p.tickets = append(p.tickets, tp)
		}
		slices.SortFunc(p.tickets, func(a, b ticketPlan) int { return cmpInt(a.at, b.at) })
		expect(event.TriggerWinback, event.ReasonSupportFriction,
			p.tickets[0].at, p.tickets[frictionTickets-1].at+days(1))

	case LowSatisfaction:
		pl.fitRhythm(&p, 0, 0, false)
		at := clampIn(S+days(uniform(r, 0.3, 0.9)*pl.span), S+days(7), E-days(14))
		tp := ticketPlan{
			at:           atHour(at, uniform(r, 7, 22)),
			category:     pick(r, []string{"delivery", "product", "billing"}, []float64{0.4, 0.4, 0.2}),
			priority:     pick(r, []event.TicketPriority{event.PriorityNormal, event.PriorityHigh}, []float64{0.6, 0.4}),
			resolveAfter: uniform(r, 0.5, quickResolveDays),
			csat:         event.NoScore,
			nps:          event.NoScore,
		}
		if r.Float64() < 0.6 {
			tp.csat = int8(1 + r.IntN(lowCSAT))
		} else {
			tp.nps = int8(r.IntN(lowNPS + 1))
			if r.Float64() < 0.5 {
				tp.csat = 3
			}
		}
		p.tickets = append(p.tickets, tp)
		// Resolution is at least 30 minutes after the agent's update.
		expect(event.TriggerWinback, event.ReasonLowSatisfaction, tp.at, tp.at+days(tp.resolveAfter)+days(1))

	case SpendDecliner:
		ok := pl.fitRhythm(&p, 0, 2*90+declineDays, true)
		p.dropAt = E - days(declineDays)
		p.dropFactor = uniform(r, 0.12, 0.22)
		if ok {
			// x days after the drop the 90-day spend is about
			// 1 − (1 − f)·x/90 of the 90 days before (f the new share):
			// under one half from about 56 days on (sooner when the
			// amounts before happened to run high), about f from 90
			// days on. Spend is judged at orders, at most 15 days apart,
			// and a new decline must hold at two orders in a row: by
			// about 71 days, well before the last order after 105 days.
			expect(event.TriggerWinback, event.ReasonSpendDecline, p.dropAt, p.dropAt+days(90+15))
		} else {
			allow(event.ReasonSpendDecline)
		}

	case Returner:
		ok := pl.fitRhythm(&p, historyOrders+returnSilence+3, 7, false)
		I := p.interval
		hist := uniform(r, historyOrders, historyOrders+2) * I
		silence := uniform(r, returnSilence, returnSilence+1.5) * I
		p.pauseAt = p.firstOrder + days(hist)
		p.resumeAt = atHour(p.pauseAt+days(silence), p.hour)
		// Spend falls while they are away.
		allow(event.ReasonSpendDecline)
		if !ok || p.resumeAt >= E-days(2*I) {
			allow(event.ReasonPurchaseLapse)
		}

	case NewCustomer:
		// 1–3 orders 5–9 days apart, the last within 6 days of the end:
		// no silence reaches twice even a weekly cohort interval.
		t := atHour(E-days(uniform(r, 1, 6)), p.hour)
		for n := 1 + r.IntN(3); n > 0 && t >= S; n-- {
			p.times = append(p.times, t)
			t = atHour(t-days(uniform(r, 5, 9)), p.hour+uniform(r, -2, 2))
		}
		slices.Sort(p.times)
		if len(p.times) == 0 {
			p.times = []int64{S + days(uniform(r, 0, 0.5))}
		}
		p.emailFrom = p.times[0]

	case OneTimeBuyer:
		p.times = []int64{atHour(S+days(uniform(r, 0.05, 0.5)*pl.span), p.hour)}
		p.emailFrom = p.times[0]
		p.openP = uniform(r, 0.10, 0.30)
		// One order teaches no rhythm; whether a long silence after a
		// single order is a lapse is the engine's (cohort) call.
		allow(event.ReasonPurchaseLapse, event.ReasonSpendDecline)
	}

	// Truth that needs the actual order times.
	ts := pl.replay(idx, &p)
	tr.Orders = len(ts)
	switch {
	case a == NewCustomer && len(ts) > 0:
		// Planted safe against any cohort interval of a week or more.
		tr.Settled = ts[0]
	case len(ts) >= lapseMinOrders:
		tr.Settled = ts[lapseMinOrders-1]
	case len(ts) > 0:
		tr.Settled = E
	}
	tr.IntervalDays = p.interval
	switch a {
	case Lapser:
		if n := len(ts); n > 0 {
			tr.LapseStart = ts[n-1] // nothing is ordered from pauseAt on
		}
		if tr.LapseStart > 0 && len(ts) >= historyOrders && float64(E-tr.LapseStart) >= lapseSilenceMin*float64(days(p.interval)) && !slices.Contains(tr.Allow, event.ReasonPurchaseLapse) {
			expect(event.TriggerWinback, event.ReasonPurchaseLapse,
				tr.LapseStart+days(lapseFactor*p.interval*(1-orderJitter)),
				tr.LapseStart+days((lapseFactor+1)*p.interval)+days(2))
		} else if !slices.Contains(tr.Allow, event.ReasonPurchaseLapse) {
			allow(event.ReasonPurchaseLapse)
		}
	case Returner:
		i, _ := slices.BinarySearch(ts, p.pauseAt)
		if i > 0 && i < len(ts) {
			tr.LapseStart, tr.ReturnAt = ts[i-1], ts[i]
		}
		if tr.LapseStart > 0 && tr.ReturnAt > 0 && i >= historyOrders && !slices.Contains(tr.Allow, event.ReasonPurchaseLapse) {
			expect(event.TriggerWinback, event.ReasonPurchaseLapse,
				tr.LapseStart+days(lapseFactor*p.interval*(1-orderJitter)),
				tr.LapseStart+days((lapseFactor+1)*p.interval)+days(2))
			expect(event.TriggerRecovered, event.ReasonPurchaseLapse, tr.ReturnAt, tr.ReturnAt+days(1))
		} else if !slices.Contains(tr.Allow, event.ReasonPurchaseLapse) {
			allow(event.ReasonPurchaseLapse)
		}
	}
	return p, tr
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// yearStart returns 1 January 00:00 UTC of t's year.
func yearStart(t int64) int64 {
	tt := unixMilli(t)
	return dateMilli(tt.Year(), 1, 1)
}
