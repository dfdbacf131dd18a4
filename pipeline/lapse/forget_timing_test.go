package lapse

import (
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// BenchmarkApplyTTL is BenchmarkApply with the default state TTL (3
// years): every customer's timer also covers its eviction, which moves at
// most once per day of activity.
func BenchmarkApplyTTL(b *testing.B) {
	const customers = 100_000
	e, f := historyEngine(customers, func(e *Engine) { e.SetTTL(1095 * 24 * time.Hour) })
	var ev event.Event
	var out []event.Trigger
	now := wallAt(0)
	b.ReportAllocs()
	for b.Loop() {
		src := f.next(&ev)
		out, _, _ = e.Apply(out[:0], src, &ev, now)
	}
	b.ReportMetric(float64(e.Len()), "customers")
	b.ReportMetric(float64(e.PendingTimers()), "timers")
}
