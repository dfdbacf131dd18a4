package lapse

import (
	"encoding/json"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// settled is c's view as of its last change, with spend decline as last
// judged (see evaluate).
func (e *Engine) settled(c *Customer) view {
	v := e.view(c, c.lastChange)
	if (v.active()^c.active)&bitSpend != 0 && c.active&bitSpend == 0 {
		v.sev[rSpend] = 0
		e.rescore(&v)
	}
	return v
}

// reasonSets holds the reasons of every mask, in event.Reasons order (nil
// for none), each capped at its length so that an append copies it.
var reasonSets = func() (sets [1 << nReasons][]event.Reason) {
	for mask := range sets {
		var out []event.Reason
		for r := 0; r < nReasons; r++ {
			if mask&(1<<r) != 0 {
				out = append(out, event.Reasons[r])
			}
		}
		sets[mask] = out[:len(out):len(out)]
	}
	return sets
}()

// reasonsOf returns the reasons in mask, in event.Reasons order, or nil.
// The slice is shared: read it, never write it.
func reasonsOf(mask uint8) []event.Reason { return reasonSets[mask&(1<<nReasons-1)] }

func nonNeg(n int32) uint32 { return uint32(max(n, 0)) }

// afterLastBounce reports whether day is later than c's newest bounce's
// (true without one).
func (c *Customer) afterLastBounce(day int32) bool { return uint16(day)+1 > c.bounceDay[0] }

// deliveredAfter reports whether an e-mail was delivered in a bucket
// after day's (2 days; the ring holds 30): the address worked after day.
func (c *Customer) deliveredAfter(day int32) bool {
	for b := window.EmailBucket(day) + 1; b < c.mail.Head(); b++ {
		if c.mail.Bucket(b).Delivered > 0 {
			return true
		}
	}
	return false
}

func (c *Customer) bounces90(day int32) uint32 {
	var n uint32
	for _, d := range c.bounceDay {
		if d != 0 && day-(int32(d)-1) < 90 {
			n++
		}
	}
	return n
}

func (c *Customer) lastTriggerID() string {
	switch c.lastKind {
	case 1:
		return TriggerID(c.ID(), event.TriggerWinback, event.Reasons[c.lastReason], c.lastEpisode)
	case 2:
		return TriggerID(c.ID(), event.TriggerRecovered, event.Reasons[c.lastReason], c.lastEpisode)
	}
	return ""
}

// Aggregate returns c's figures as of its last change (AsOf), so the same
// version always carries the same figures whatever the batch boundaries.
func (c *Customer) Aggregate(e *Engine) event.Aggregate {
	v := e.settled(c)
	dayOrders, dayCents := v.o.NDay, v.o.CDay // the day of v (c.lastChange): ordWin.On's, from the same pass
	a := event.Aggregate{
		CustomerID:   c.ID(),
		Version:      uint64(c.version),
		AsOf:         c.lastChange,
		FirstOrderAt: millis(c.firstOrder),
		LastOrderAt:  c.lastOrder,
		OrdersTotal:  c.orders,
		SpendTotal:   float64(c.spend) / 100,
		DayOrders:    dayOrders,
		DaySpend:     float64(dayCents) / 100,

		Orders7d: nonNeg(v.o.N7), Orders30d: nonNeg(v.o.N30), Orders90d: nonNeg(v.o.N90), OrdersPrev90d: nonNeg(v.o.NPrev90),
		Spend7d: float64(v.o.C7) / 100, Spend30d: float64(v.o.C30) / 100, Spend90d: float64(v.o.C90) / 100, SpendPrev90d: float64(v.o.CPrev90) / 100,

		BaselineSource: "cohort",

		EmailsDelivered30d: uint32(v.m.Deliveries()),
		EmailsOpened30d:    uint32(v.m.Opened),
		EmailsClicked30d:   uint32(v.m.Clicked),
		EmailsBounced90d:   c.bounces90(v.day),
		OpenRate30d:        round4(v.openRate),
		ClickRate30d:       round4(v.clickRate),
		OpenRateBaseline:   round4(v.openBase),
		ClickRateBaseline:  round4(v.clickBase),
		Unsubscribed:       c.flags&flagUnsubscribed != 0,
		HardBounced:        c.flags&flagHardBounced != 0,

		TicketsOpened30d:   uint32(v.s.Opened30),
		TicketsOpened90d:   uint32(v.s.Opened90),
		TicketsReopened90d: uint32(v.s.Reopened90),
		TicketsOpen:        uint32(v.openTickets),
		Complaints90d:      uint32(v.s.Complaint90),
		LastCSAT:           v.csat,
		LastNPS:            v.nps,

		ValueTier:     tierNames[c.tier],
		CLV:           round2(v.clv),
		PLapse:        round4(v.pLapse),
		RiskScore:     round4(v.risk),
		ActiveReasons: reasonsOf(c.active),

		LastTriggerID: c.lastTriggerID(),
	}
	if c.lastOrder != 0 {
		a.UsualIntervalDays = round4(v.g.usualDays)
		a.IntervalSpreadDays = round4(v.g.spreadDays)
	}
	if v.g.personal {
		a.BaselineSource = "personal"
	}
	if c.lastKind != 0 {
		a.LastTriggerReason = event.Reasons[c.lastReason]
		a.LastTriggerAt = millis(c.lastAsOf)
	}
	return a
}

type signalJSON struct {
	Reason   event.Reason `json:"reason"`
	Severity float64      `json:"severity"`
}

type triggerRefJSON struct {
	ID     string       `json:"trigger_id"`
	Kind   string       `json:"kind"`
	Reason event.Reason `json:"reason"`
	AsOf   string       `json:"as_of"`
}

func isoMilli(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// MarshalJSON renders the customer for the live lookup API: windows,
// baselines, signals, value, risk and the pending timer, as of its last
// change. Like every Customer method it must not run concurrently with the
// engine.
func (c *Customer) MarshalJSON() ([]byte, error) {
	e := c.eng
	v := e.settled(c)
	var due *string
	if d, ok := c.Due(); ok {
		s := isoMilli(d)
		due = &s
	}
	out := struct {
		ID      string          `json:"customer_id"`
		Version uint64          `json:"version"`
		AsOf    string          `json:"as_of"`
		Orders  any             `json:"orders"`
		Rhythm  any             `json:"rhythm"`
		Email   any             `json:"email"`
		Support any             `json:"support"`
		Value   any             `json:"value"`
		Model   any             `json:"purchase_model"`
		PLapse  *float64        `json:"p_lapse"`
		Risk    float64         `json:"risk_score"`
		Signals []signalJSON    `json:"signals"`
		Pending []event.Reason  `json:"held_by_cooldown,omitempty"`
		Held    []event.Reason  `json:"held_by_budget,omitempty"`
		Since   *string         `json:"budget_held_since,omitempty"`
		Timer   *string         `json:"pending_timer"`
		Last    *triggerRefJSON `json:"last_trigger,omitempty"`
		Open    *triggerRefJSON `json:"open_episode,omitempty"`
	}{
		ID:      c.ID(),
		Version: uint64(c.version),
		AsOf:    isoMilli(c.lastChange),
		Orders: map[string]any{
			"first_order_at": isoMilli(millis(c.firstOrder)), "last_order_at": isoMilli(c.lastOrder),
			"orders_total": c.orders, "spend_total": float64(c.spend) / 100,
			"orders_7d": v.o.N7, "orders_30d": v.o.N30, "orders_90d": v.o.N90, "orders_prev_90d": v.o.NPrev90,
			"spend_7d": float64(v.o.C7) / 100, "spend_30d": float64(v.o.C30) / 100,
			"spend_90d": float64(v.o.C90) / 100, "spend_prev_90d": float64(v.o.CPrev90) / 100,
			"order_days_kept": c.ordWin.Len(),
		},
		Rhythm: map[string]any{
			"source":              map[bool]string{true: "personal", false: "cohort"}[v.g.personal],
			"usual_interval_days": round4(v.g.usualDays), "interval_spread_days": round4(v.g.spreadDays),
			"due_gap_days": round4(v.g.gapDays), "lapse_due_at": isoMilli(v.lapseDue),
			"recent_interval_hours": c.iv.Hours(),
		},
		Email: map[string]any{
			"sent_30d": v.m.Sent, "delivered_30d": v.m.Deliveries(), "opened_30d": v.m.Opened, "clicked_30d": v.m.Clicked,
			"open_rate_30d": round4(v.openRate), "click_rate_30d": round4(v.clickRate),
			"open_rate_baseline": round4(v.openBase), "click_rate_baseline": round4(v.clickBase),
			"baseline_delivered": round2(v.base.Deliveries),
			"unsubscribed":       c.flags&flagUnsubscribed != 0, "hard_bounced": c.flags&flagHardBounced != 0,
			"bounced_90d": c.bounces90(v.day),
		},
		Support: map[string]any{
			"opened_30d": v.s.Opened30, "opened_90d": v.s.Opened90, "resolved_90d": v.s.Resolved90,
			"reopened_90d": v.s.Reopened90, "complaints_90d": v.s.Complaint90, "open_now": v.openTickets,
			"past_sla": v.pastSLA, "last_csat": v.csat, "last_nps": v.nps,
		},
		Value:   map[string]any{"clv": round2(v.clv), "percentile": round4(v.pct), "tier": tierNames[c.tier]},
		Risk:    round4(v.risk),
		Signals: []signalJSON{},
		Model:   e.modelJSON(c, &v),
		Pending: reasonsOf(c.pending),
		Held:    reasonsOf(c.held),
		Timer:   due,
	}
	if c.heldDay != 0 {
		s := isoMilli((int64(c.heldDay) - 1) * window.MsPerDay)
		out.Since = &s
	}
	if v.hasP {
		p := round4(v.pLapse)
		out.PLapse = &p
	}
	for r := 0; r < nReasons; r++ {
		if c.active&(1<<r) != 0 {
			out.Signals = append(out.Signals, signalJSON{event.Reasons[r], round4(v.sev[r])})
		}
	}
	if c.lastKind != 0 {
		kind := event.TriggerWinback
		if c.lastKind == 2 {
			kind = event.TriggerRecovered
		}
		out.Last = &triggerRefJSON{c.lastTriggerID(), string(kind), event.Reasons[c.lastReason], isoMilli(millis(c.lastAsOf))}
	}
	if c.flags&flagOpen != 0 {
		r := event.Reasons[c.openReason]
		out.Open = &triggerRefJSON{TriggerID(c.ID(), event.TriggerWinback, r, c.openEpisode), string(event.TriggerWinback), r, isoMilli(millis(c.openAsOf))}
	}
	return json.Marshal(out)
}

var _ = window.Day

// modelJSON is the purchase model's figures for c as of v.T: p_lapse (no
// order within the horizon), P(alive), the statistics they come from and
// the population parameters; nil for a customer without a placed order.
func (e *Engine) modelJSON(c *Customer, v *view) any {
	if !v.hasP {
		return nil
	}
	o := e.Obs(c, v.T)
	return map[string]any{
		"p_lapse": round4(v.pLapse), "p_alive": round4(v.pAlive), "horizon_days": e.p.cfg.Lapse.HorizonDays,
		"repeat_purchases": c.repeats, "days_first_to_last_order": round4(o.Tx), "days_since_first_order": round4(o.T),
		"expected_orders": round4(e.ExpectedOrders(c, v.T, e.p.cfg.Lapse.HorizonDays)),
		"params":          e.model,
	}
}
