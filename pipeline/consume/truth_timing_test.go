package consume

import (
	"fmt"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// countSink counts the rows the runner hands it.
type countSink struct {
	nopSink
	n int
}

func (s *countSink) Add(rows *event.Rows) { s.n += len(rows.Aggregates) }

// BenchmarkResync is what a restore adds for ClickHouse: the aggregate row
// of every restored customer (per customer: b.N is customers).
func BenchmarkResync(b *testing.B) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const customers = 20000
	eng := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	for i := range customers {
		for j := range 5 {
			ev := event.Event{Kind: event.KindOrder, EventID: fmt.Sprintf("e%d-%d", i, j), CustomerID: fmt.Sprintf("c%06d", i),
				Time: wall.Add(time.Duration(j*20-120) * 24 * time.Hour).UnixMilli(), OrderType: event.OrderPlaced,
				OrderID: fmt.Sprintf("o%d-%d", i, j), Amount: 30, Currency: "EUR", Items: 1}
			eng.Apply(nil, lapse.SourceOrders, &ev, wall)
		}
	}
	eng.TakeDirty(func(*lapse.Customer) {})
	sink := &countSink{}
	r := truthRunner(sink, wall)
	tk := &task{eng: eng, epoch: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += customers {
		r.resync(tk, nil, nil, nil, true)
	}
	if sink.n < b.N {
		b.Fatalf("%d rows for %d customers", sink.n, b.N)
	}
}
