package lapse

import "github.com/winback/winback/pipeline/event"

// Stats are the engine's counters, for the runner to export as metrics.
type Stats struct {
	Events     uint64 // events applied, including duplicates
	Duplicates uint64 // events ignored as a repeated event_id
	Late       uint64 // events behind the watermark (counted in the windows)
	// LateDaysUnkept counts events on an earlier day than their
	// customer's last change, too old for the order window to write
	// that day's customer_daily row again (see Engine.KeepDays).
	LateDaysUnkept uint64
	// Triggers counts WINBACK triggers by primary reason.
	Triggers    map[event.Reason]uint64
	Recovered   uint64 // RECOVERED triggers
	Suppressed  uint64 // candidate reasons held back by a cooldown
	Preempted   uint64 // reasons that fired inside their cooldown on priority
	TimersFired uint64
	// Erased and Evicted count customers that left (forget.go).
	Erased, Evicted uint64
	// Control counts WINBACK triggers sent to the control group (holdout).
	Control uint64
	// The contact budget: BudgetHeld counts reasons it held back (each
	// once per wait), BudgetDelayed triggers sent after waiting on it,
	// BudgetMerged triggers it folded into a stronger one sent at the same
	// time (a reason calling for another action went out inside it), and
	// BudgetDropped held reasons dropped because the customer ordered
	// (recovered) or the reason stopped holding.
	BudgetHeld, BudgetDelayed, BudgetMerged, BudgetDropped uint64
	// Refits counts the purchase model's refits (RefitInfo), those that
	// kept the parameters included.
	Refits uint64

	Customers     int
	PendingTimers int
	Watermark     int64 // Unix ms; math.MinInt64 if none yet
}

type counters struct {
	Events, Duplicates, Late                      uint64
	Recovered, Suppressed, Preempted, TimersFired uint64
	Erased, Evicted                               uint64
	Control                                       uint64
	BudgetHeld, BudgetDelayed                     uint64
	BudgetMerged, BudgetDropped                   uint64
	Refits                                        uint64
	triggers                                      []uint64
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		Events:         e.stats.Events,
		Duplicates:     e.stats.Duplicates,
		Late:           e.stats.Late,
		LateDaysUnkept: e.days.unkept,
		Erased:         e.stats.Erased,
		Evicted:        e.stats.Evicted,
		Triggers:       make(map[event.Reason]uint64, nReasons),
		Recovered:      e.stats.Recovered,
		Suppressed:     e.stats.Suppressed,
		Preempted:      e.stats.Preempted,
		TimersFired:    e.stats.TimersFired,
		Control:        e.stats.Control,
		BudgetHeld:     e.stats.BudgetHeld,
		BudgetDelayed:  e.stats.BudgetDelayed,
		BudgetMerged:   e.stats.BudgetMerged,
		BudgetDropped:  e.stats.BudgetDropped,
		Refits:         e.stats.Refits,
		Customers:      e.Len(),
		PendingTimers:  e.PendingTimers(),
		Watermark:      e.Watermark(),
	}
	for i, r := range event.Reasons {
		s.Triggers[r] = e.stats.triggers[i]
	}
	return s
}
