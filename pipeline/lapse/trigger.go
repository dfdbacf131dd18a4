package lapse

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// evaluate looks at c's figures as of event time T (the customer's present)
// and emits its WINBACK triggers as of event time at: the time of the event
// (or timer) that caused the evaluation. Triggers carry at as their AsOf and
// (except a lapse, keyed by its last order) as their episode, and cooldowns
// count from it, so they do not depend on how the customer's three topics
// interleaved before it. cause holds the reasons this very event (or timer) caused: an
// unsubscribe, a bounce, a low score, a reopened or complaint ticket, an SLA
// breach. fromTimer marks a timer (the only place a lapse fires); evalSpend
// marks an order or a timer (the only places spend decline is judged, so a
// window sliding between two orders of a monthly buyer cannot fake a drop).
//
// Candidates are the caused reasons, the state reasons (spend, engagement,
// friction) that start to hold, a due lapse, and reasons held back earlier
// by a cooldown that still hold. A candidate is suppressed while its reason
// is in cooldown, unless the trigger's priority is at least PreemptMargin
// above that earlier trigger's (pre-emption). The surviving candidates make
// one trigger per recommended action; in each, the strongest reason
// (weight × severity) is the primary one.
func (e *Engine) evaluate(dst []event.Trigger, c *Customer, T, at int64, cause uint8, fromTimer, evalSpend bool, now time.Time) []event.Trigger {
	v := e.signals(c, T)
	day := window.Day(at)
	active := v.active()
	if evalSpend && active&bitSpend != 0 && c.active&bitSpend == 0 && c.flags&flagSpendSeen == 0 {
		// A new spend decline must hold at two orders in a row: one
		// order's window can halve by chance (see docs/signals.md).
		active &^= bitSpend
		v.sev[rSpend] = 0
		if !fromTimer {
			c.flags |= flagSpendSeen
		}
	} else if evalSpend && !fromTimer {
		c.flags = c.flags&^flagSpendSeen | flagSpendSeen*b2u8(active&bitSpend != 0)
	}
	if !evalSpend && (active^c.active)&bitSpend != 0 {
		// Keep spend decline as last judged.
		if c.active&bitSpend == 0 {
			v.sev[rSpend] = 0
		}
		active = active&^bitSpend | c.active&bitSpend
	}
	cands := cause & active
	cands |= active & stateBits &^ c.active
	if fromTimer && active&bitLapse != 0 && c.flags&flagLapseDone == 0 {
		cands |= bitLapse
	}
	if c.flags&flagLapseDone != 0 {
		// This silence was handled already.
		cands &^= bitLapse
		c.pending &^= bitLapse
	}
	wasPending := c.pending & active
	cands |= wasPending
	c.pending &= active
	judged := c.holdStarted(day)
	if gone := c.held &^ active; gone != 0 && judged {
		// A reason the budget held back no longer holds.
		e.stats.BudgetDropped += uint64(bits.OnesCount8(gone))
		c.held &= active
	}
	if c.held == 0 {
		c.heldDay = 0
	}
	if judged {
		cands |= c.held & active // goes out once the budget allows
	}
	c.active = active
	if cands == 0 {
		return dst
	}
	e.score(c, &v)
	prio := e.priority(&v)
	var allowed, preempting uint8
	for r := 0; r < nReasons; r++ {
		if cands&(1<<r) == 0 {
			continue
		}
		if c.held&(1<<r) != 0 {
			// It passed its cooldown when it came due; the budget
			// only delays it.
			allowed |= 1 << r
			continue
		}
		switch e.cooldown(c, r, day, prio) {
		case cdFree:
			allowed |= 1 << r
		case cdPreempt:
			allowed |= 1 << r
			preempting |= 1 << r
			e.stats.Preempted++
		}
	}
	if held := cands &^ allowed; held != 0 {
		e.stats.Suppressed += uint64(bits.OnesCount8(held &^ wasPending))
		c.pending |= held & deferBits
	}
	if allowed == 0 {
		return dst
	}
	left := nReasons // sends the budget allows now
	if e.p.budgetN > 0 {
		if left = e.budgetLeft(c, day); left == 0 {
			e.stats.BudgetHeld += uint64(bits.OnesCount8(allowed &^ c.held))
			if d := uint16(min(day+1, window.MaxDay)); c.heldDay == 0 || d < c.heldDay {
				c.heldDay = d
			}
			c.held |= allowed
			c.pending &^= allowed
			return dst
		}
	}
	delayed, heldDay := c.held&allowed, c.heldDay
	c.held &^= allowed // the rest (not holding at T) waits on
	if c.held == 0 {
		c.heldDay = 0
	}
	if allowed&bitLapse != 0 {
		c.flags |= flagLapseDone
	}
	for r := 0; r < nReasons; r++ {
		if allowed&(1<<r) != 0 {
			c.firedDay[r] = uint16(min(day+1, window.MaxDay))
			c.firedPrio[r] = uint8(prio)
		}
	}
	c.pending &^= allowed
	// One trigger per recommended action: reasons that call for the same
	// action (a lapse and a spend decline) share a trigger, reasons that
	// call for different ones (friction and an unsubscribe) do not, so no
	// action is lost. The strongest group goes first.
	// Past the budget, the last trigger it allows takes every remaining
	// reason (budget.go).
	first := true
	for allowed != 0 {
		primary := strongest(e, &v, allowed)
		var group uint8
		for r := 0; r < nReasons; r++ {
			if allowed&(1<<r) != 0 && e.p.actions[r] == e.p.actions[primary] {
				group |= 1 << r
			}
		}
		left--
		if left == 0 && group != allowed {
			e.stats.BudgetMerged += uint64(actionGroups(e, allowed&^group))
			group = allowed
		}
		allowed &^= group
		episode := at
		switch {
		case primary == rLapse:
			episode = c.lastOrder
		case preempting&(1<<primary) != 0:
			episode = preemptEpisode(at, prio)
		}
		arm := e.treatment(c, primary, episode)
		if group&e.p.recoverOn != 0 {
			c.flags = c.flags&^flagOpenControl | flagOpen
			if arm == event.TreatmentControl {
				c.flags |= flagOpenControl
			}
			c.openReason, c.openEpisode, c.openAsOf = uint8(primary), episode, seconds(at)
		}
		if first {
			c.lastKind, c.lastReason, c.lastEpisode, c.lastAsOf = 1, uint8(primary), episode, seconds(at)
			first = false
		}
		e.stats.triggers[primary]++
		if arm == event.TreatmentControl {
			e.stats.Control++
		}
		c.recordSend(day)
		t := e.winback(c, &v, primary, active|group, prio, episode, at, now)
		t.Treatment = arm
		if group&delayed != 0 {
			// It waited on the budget: since the day the first of its
			// reasons was held back.
			e.stats.BudgetDelayed++
			t.Evidence["budget_delayed_days"] = round4(float64(at-(int64(heldDay)-1)*window.MsPerDay) / float64(window.MsPerDay))
		}
		if n := actionGroups(e, group); n > 1 {
			t.Evidence["budget_merged_actions"] = float64(n - 1)
		}
		dst = append(dst, t)
	}
	return dst
}

// actionGroups counts the distinct configured actions of the reasons in
// mask: the triggers they would make without a budget.
func actionGroups(e *Engine, mask uint8) int {
	var seen []event.Action
	for r := 0; r < nReasons; r++ {
		if mask&(1<<r) != 0 && !slices.Contains(seen, e.p.actions[r]) {
			seen = append(seen, e.p.actions[r])
		}
	}
	return len(seen)
}

// strongest returns the reason in mask with the largest weight × severity
// (the first in reason order on a tie).
func strongest(e *Engine, v *view, mask uint8) int {
	best := -1
	for r := 0; r < nReasons; r++ {
		if mask&(1<<r) != 0 && (best < 0 || e.p.weights[r]*v.sev[r] > e.p.weights[best]*v.sev[best]) {
			best = r
		}
	}
	return best
}

// winback builds a WINBACK trigger with the given primary reason; reasons
// lists every active reason, the primary first, then by weight × severity.
func (e *Engine) winback(c *Customer, v *view, primary int, reasons uint8, prio int, episode, at int64, now time.Time) event.Trigger {
	var order []int
	for r := 0; r < nReasons; r++ {
		if reasons&(1<<r) != 0 && r != primary {
			order = append(order, r)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		wa, wb := e.p.weights[a]*v.sev[a], e.p.weights[b]*v.sev[b]
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return 0
	})
	list := make([]event.Reason, 0, len(order)+1)
	list = append(list, event.Reasons[primary])
	for _, r := range order {
		list = append(list, event.Reasons[r])
	}
	return event.Trigger{
		TriggerID:         TriggerID(c.ID(), event.TriggerWinback, event.Reasons[primary], episode),
		CustomerID:        c.ID(),
		Kind:              event.TriggerWinback,
		Reasons:           list,
		PrimaryReason:     event.Reasons[primary],
		RiskScore:         round4(v.risk),
		ValueTier:         tierNames[c.tier],
		Priority:          int32(prio),
		RecommendedAction: channel(c, e.action(primary, c.tier, v.risk)),
		Evidence:          e.evidence(c, v, reasons),
		AsOf:              at,
		EmittedAt:         now.UnixMilli(),
		PLapse:            v.pLapsePtr(),
	}
}

// pLapsePtr is the trigger's p_lapse: nil without a placed order.
func (v *view) pLapsePtr() *float64 {
	if !v.hasP {
		return nil
	}
	p := round4(v.pLapse)
	return &p
}

const (
	cdFree = iota
	cdHeld
	cdPreempt
)

// cooldown says whether reason r may fire for c on day with priority prio.
func (e *Engine) cooldown(c *Customer, r int, day int32, prio int) int {
	fd := c.firedDay[r]
	if fd == 0 || day-(int32(fd)-1) >= e.p.cooldown[r] {
		return cdFree
	}
	if prio >= int(c.firedPrio[r])+e.p.preempt {
		return cdPreempt
	}
	return cdHeld
}

// rescore sets v.risk, the probability that the customer is lost, as a
// noisy-OR of independent causes: not buying again, with the probability
// max(p_lapse, w × severity of PURCHASE_LAPSE) (both estimate the same
// event, so the larger counts, not both), and every other active reason
// r with w_r × severity_r. risk = 1 − (1 − lapse) × Π(1 − w_r × s_r).
// v.pLapse must be set (score sets it first). docs/signals.md, "Risk".
func (e *Engine) rescore(v *view) {
	lapse := e.p.weights[rLapse] * v.sev[rLapse]
	if v.hasP {
		lapse = max(lapse, v.pLapse)
	}
	keep := 1 - lapse
	for r, s := range v.sev {
		if r != rLapse {
			keep *= 1 - e.p.weights[r]*s
		}
	}
	v.risk = 1 - keep
}

// priority maps risk and value to 1–100: 1 + 99 × risk × ((1 − w) + w ×
// value percentile), so that the most valuable customers at the highest
// risk come first.
func (e *Engine) priority(v *view) int {
	w := e.p.cfg.Risk.ValueWeight
	p := 1 + 99*v.risk*((1-w)+w*v.pct)
	return int(min(max(math.Round(p), 1), 100))
}

// action maps the primary reason to the configured action; HIGH-tier
// customers at early risk get LOYALTY_REWARD instead of an offer or a
// re-engagement campaign.
func (e *Engine) action(primary int, tier uint8, risk float64) event.Action {
	a := e.p.actions[primary]
	if tier == tierHigh && risk < e.p.cfg.Risk.LoyaltyMaxRisk &&
		(a == event.ActionWinbackOffer || a == event.ActionReengagement) {
		return event.ActionLoyaltyReward
	}
	return a
}

// recovered builds the RECOVERED trigger of c's open episode for an order
// at t worth cents; prev is the order before it.
func (e *Engine) recovered(c *Customer, t, cents, prev int64, now time.Time) event.Trigger {
	v := e.view(c, c.lastChange)
	r := int(c.openReason)
	reason := event.Reasons[r]
	ev := map[string]float64{
		"days_to_return":        round4(float64(t-millis(c.openAsOf)) / float64(window.MsPerDay)),
		"revenue":               float64(cents) / 100,
		"days_since_last_order": 0,
		"clv":                   round2(v.clv),
		"orders_total":          float64(c.orders),
	}
	if prev != 0 {
		ev["days_since_last_order"] = round4(float64(t-prev) / float64(window.MsPerDay))
	}
	c.lastKind, c.lastReason, c.lastEpisode, c.lastAsOf = 2, uint8(r), c.openEpisode, seconds(t)
	e.stats.Recovered++
	arm := event.TreatmentTreated
	if c.flags&flagOpenControl != 0 {
		arm = event.TreatmentControl
	}
	return event.Trigger{
		TriggerID:         TriggerID(c.ID(), event.TriggerRecovered, reason, c.openEpisode),
		CustomerID:        c.ID(),
		Kind:              event.TriggerRecovered,
		Reasons:           []event.Reason{reason},
		PrimaryReason:     reason,
		RiskScore:         round4(v.risk),
		ValueTier:         tierNames[c.tier],
		Priority:          int32(e.priority(&v)),
		RecommendedAction: channel(c, e.p.cfg.Lifecycle.RecoveredAction),
		Evidence:          ev,
		OriginalTriggerID: TriggerID(c.ID(), event.TriggerWinback, reason, c.openEpisode),
		AsOf:              t,
		EmittedAt:         now.UnixMilli(),
		PLapse:            v.pLapsePtr(),
		Treatment:         arm,
	}
}

// evidence names the numbers behind a trigger: the customer's value and
// rhythm always, and each active reason's figures.
func (e *Engine) evidence(c *Customer, v *view, reasons uint8) map[string]float64 {
	m := map[string]float64{
		"clv":              round2(v.clv),
		"value_percentile": round4(v.pct),
		"orders_total":     float64(c.orders),
	}
	if c.lastOrder != 0 {
		m["days_since_last_order"] = round4(v.sinceDays)
		m["usual_interval_days"] = round4(v.g.usualDays)
		m["interval_spread_days"] = round4(v.g.spreadDays)
		m["due_gap_days"] = round4(v.g.gapDays)
		m["baseline_cohort"] = b2f(!v.g.personal)
	}
	if v.hasP {
		m["p_lapse"] = round4(v.pLapse)
		m["p_alive"] = round4(v.pAlive)
		m["p_lapse_horizon_days"] = e.p.cfg.Lapse.HorizonDays
		m["repeat_purchases"] = float64(c.repeats)
		if v.g.modelDays > 0 && !math.IsInf(v.g.modelDays, 0) {
			m["model_gap_days"] = round4(v.g.modelDays)
		}
		if l := &e.p.cfg.Lapse; reasons&bitLapse != 0 && l.MaxPAlive > 0 {
			// The evidence check's own figures: the threshold, the
			// customer's regularity (Erlang order) and its P(alive)
			// under it now (at most the threshold once the lapse is due).
			q := e.lapseModel(c)
			o, _ := c.obs(v.T, q.K > 1)
			m["max_p_alive"] = l.MaxPAlive
			m["lapse_regularity_k"] = float64(max(q.K, 1))
			m["lapse_p_alive"] = round4(q.PAlive(o.X, o.Tx, o.T))
		}
	}
	if reasons&(bitLapse|bitSpend) != 0 {
		m["orders_90d"] = float64(v.o.N90)
		m["orders_prev_90d"] = float64(v.o.NPrev90)
		m["spend_90d"] = float64(v.o.C90) / 100
		m["spend_prev_90d"] = float64(v.o.CPrev90) / 100
		if v.o.CPrev90 > 0 {
			m["spend_change_pct"] = round2(100 * (float64(v.o.C90) - float64(v.o.CPrev90)) / float64(v.o.CPrev90))
		}
	}
	if reasons&(bitEngagement|bitUnsub|bitBounce) != 0 {
		m["delivered_30d"] = float64(v.m.Deliveries())
		m["open_rate_30d"] = round4(v.openRate)
		m["open_rate_baseline"] = round4(v.openBase)
		m["click_rate_30d"] = round4(v.clickRate)
		m["click_rate_baseline"] = round4(v.clickBase)
		m["baseline_delivered"] = round2(v.base.Deliveries)
		if reasons&bitEngagement != 0 {
			m["open_p_value"] = round4(v.openP)
			m["click_p_value"] = round4(v.clickP)
			m["open_cusum"] = round2(v.openS)
			m["open_cusum_rate"] = round4(v.openS0)
			m["cusum_threshold"] = e.p.cfg.Engagement.CUSUMThreshold
		}
		m["unsubscribed"] = b2f(c.flags&flagUnsubscribed != 0)
		m["hard_bounced"] = b2f(c.flags&flagHardBounced != 0)
	}
	if reasons&(bitFriction|bitLowSat) != 0 {
		m["open_tickets"] = float64(v.openTickets)
		m["tickets_30d"] = float64(v.s.Opened30 + v.s.Reopened30)
		m["reopened_90d"] = float64(v.s.Reopened90)
		m["complaints_90d"] = float64(v.s.Complaint90)
		m["sla_breached"] = float64(v.pastSLA)
		m["last_csat"] = float64(v.csat)
		m["last_nps"] = float64(v.nps)
	}
	return m
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
func round2(x float64) float64 { return math.Round(x*100) / 100 }

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// preemptEpisode is the episode of a trigger that pre-empts its reason's
// cooldown: the reason fired already within the cooldown, perhaps at the
// same event time (the id of a trigger is its reason and episode), so the
// episode also holds the priority, which each pre-emption raises by at
// least lifecycle.preempt_margin. Negative, so that it is never an event
// time, the episode of the reason's other triggers.
func preemptEpisode(at int64, prio int) int64 { return -(at*128 + int64(prio)) }
