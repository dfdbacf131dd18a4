package clickhouse

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/testenv"
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

// BenchmarkFlush: one flush of 20k changed customers (a transaction of the
// benchmark stream changes about 48k) to the real ClickHouse of testenv.
// sec/op is the wall time, server included; client-ns/customer is this
// process's own CPU (getrusage) per customer written, which is what the
// sink costs winback.
func BenchmarkFlush(b *testing.B) {
	ch := testenv.NewClickHouse(b)
	s := migratedSink(b, ch, Config{})
	ctx := testCtx(b, 10*time.Minute)
	const customers = 20000
	aggs := make([]event.Aggregate, customers)
	for i := range aggs {
		aggs[i] = event.Aggregate{
			CustomerID: fmt.Sprintf("c%06d", i), AsOf: jan5.UnixMilli(), FirstOrderAt: jan5.UnixMilli() - 86400000*30,
			LastOrderAt: jan5.UnixMilli(), OrdersTotal: uint32(i % 17), SpendTotal: float64(i%1000) + 0.5,
			Orders30d: 2, Orders90d: 4, Spend30d: 80.25, Spend90d: 160.5, UsualIntervalDays: 14.5,
			LastCSAT: int8(i % 6), LastNPS: event.NoScore, ValueTier: event.TierMedium, BaselineSource: "personal",
			CLV: 512.5, RiskScore: 0.25, OpenRate30d: 0.4, ClickRate30d: 0.1,
		}
		if i%10 == 0 {
			aggs[i].ActiveReasons = []event.Reason{event.ReasonPurchaseLapse}
		}
	}
	var written float64
	cpu0 := processCPU(b)
	b.ReportAllocs()
	for b.Loop() {
		for i := range aggs {
			aggs[i].Version++
			s.AddAggregate(&aggs[i])
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		written += customers
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/written, "client-ns/customer")
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
