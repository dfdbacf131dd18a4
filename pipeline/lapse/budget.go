package lapse

import (
	"math/bits"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// The contact budget (lifecycle.max_triggers_per_customer within
// lifecycle.budget_days): a customer keeps the days of its last maxBudget
// WINBACK triggers (Customer.sent, treated and control alike, so that both
// arms live the same lifecycle). When a trigger is due and the budget is
// spent, its reasons are held (Customer.held, from the day in heldDay) and
// the customer's timer is armed for the day the budget frees. At every
// evaluation the held reasons that still hold are candidates again; once
// the budget allows, they go out, merged into as few triggers as the
// budget allows (the strongest first, the last one taking every remaining
// reason: a weaker reason goes out inside a stronger trigger instead of on
// its own), with the days they waited in the evidence. A held reason that
// stops holding, and everything held when the customer places an order
// (the customer recovered), is dropped.

// maxBudget is the most triggers per window a budget may allow.
const maxBudget = 4

// budgetLeft returns how many WINBACK triggers c may still get on day:
// the budget less the triggers sent within budget_days of it, on either
// side (a timer can fire at an event time before a trigger sent already,
// and both are contacts made now).
func (e *Engine) budgetLeft(c *Customer, day int32) int {
	n := e.p.budgetN
	for _, d := range c.sent[:e.p.budgetN] {
		if diff := day - (int32(d) - 1); d != 0 && diff < e.p.budgetDays && -diff < e.p.budgetDays {
			n--
		}
	}
	return n
}

// budgetFree returns when (start of day, Unix ms) c's budget allows a
// trigger again: when the oldest send that counts leaves the window.
func (e *Engine) budgetFree(c *Customer) int64 {
	if e.p.budgetN == 0 {
		return 0
	}
	oldest := c.sent[e.p.budgetN-1]
	return (int64(oldest) - 1 + int64(e.p.budgetDays)) * window.MsPerDay
}

// recordSend records a WINBACK trigger sent on day, keeping sent newest
// day first.
func (c *Customer) recordSend(day int32) {
	d := uint16(min(day+1, window.MaxDay))
	i := 0
	for i < maxBudget && c.sent[i] > d {
		i++
	}
	if i < maxBudget {
		copy(c.sent[i+1:], c.sent[i:maxBudget-1])
		c.sent[i] = d
	}
}

// holdStarted reports whether what the budget holds was held on or before
// day: an evaluation as of an earlier day (a late event's, or a timer that
// looks back) neither releases nor drops it.
func (c *Customer) holdStarted(day int32) bool { return int32(c.heldDay) <= day+1 }

// dropHeld drops every held reason on an order of day: the customer
// recovered. An order from before the hold, arriving late, is not one
// placed meanwhile, and drops nothing.
func (e *Engine) dropHeld(c *Customer, day int32) {
	if c.held != 0 && c.holdStarted(day) {
		e.stats.BudgetDropped += uint64(bits.OnesCount8(c.held))
		c.held, c.heldDay = 0, 0
	}
}

// emailActions are the actions marketing automation carries out by
// e-mail; a customer who unsubscribed or whose address bounces gets
// CHANNEL_SWITCH instead.
func emailAction(a event.Action) bool {
	return a == event.ActionWinbackOffer || a == event.ActionReengagement || a == event.ActionLoyaltyReward
}

// channel returns a, or CHANNEL_SWITCH when a goes by e-mail and e-mail
// no longer reaches c.
func channel(c *Customer, a event.Action) event.Action {
	if c.flags&(flagUnsubscribed|flagHardBounced) != 0 && emailAction(a) {
		return event.ActionChannelSwitch
	}
	return a
}
