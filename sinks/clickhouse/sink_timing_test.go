package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// BenchmarkAddAggregate: adding a changed customer to the pending batch
// (copy, latest-version check, customer-day row), as the runner does for
// every state change.
func BenchmarkAddAggregate(b *testing.B) {
	s := offlineSink(b, Config{})
	const customers = 10000
	aggs := make([]event.Aggregate, customers)
	for i := range aggs {
		aggs[i] = event.Aggregate{
			CustomerID: fmt.Sprintf("customer-%07d", i), AsOf: jan5.UnixMilli(), OrdersTotal: 3, SpendTotal: 99.5,
			LastCSAT: 4, LastNPS: event.NoScore, ValueTier: event.TierMedium,
			ActiveReasons: []event.Reason{event.ReasonPurchaseLapse},
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := &aggs[i%customers]
		a.Version++
		a.AsOf += int64(time.Minute / time.Millisecond)
		s.AddAggregate(a)
		i++
	}
}
