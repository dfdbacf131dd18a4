package consume

import (
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// BenchmarkPick: one merge step of a task: pick among its five sources
// (three inputs queued, the repartition and erasure sources read to their
// end) and the pop that follows; the event goes back in at the tail, so
// the queues never empty.
func BenchmarkPick(b *testing.B) {
	now := time.Unix(0, 0)
	tk := &task{}
	for i, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
		tk.src[i] = source{next: 1000, hwm: 1000}
		for j := range 1000 {
			q := tk.src[i].add()
			q.off, q.ev.Kind, q.ev.Time = int64(j), k, int64(3*j+i)
		}
	}
	tk.src[srcRepartition] = source{next: 5, hwm: 5}
	tk.src[srcErasures] = source{next: 5, hwm: 5}
	b.ReportAllocs()
	for b.Loop() {
		i := tk.pick(now, barrier{})
		s := &tk.src[i]
		q := *s.pop()
		q.ev.Time += 3000
		*s.add() = q
	}
}
