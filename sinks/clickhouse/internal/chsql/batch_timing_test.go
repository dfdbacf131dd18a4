package chsql

import (
	"fmt"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

func benchAggregates(n int) []event.Aggregate {
	out := make([]event.Aggregate, n)
	for i := range out {
		out[i] = event.Aggregate{
			CustomerID: fmt.Sprintf("customer-%07d", i), Version: uint64(i%7 + 1), AsOf: t0.Add(time.Duration(i) * time.Minute).UnixMilli(),
			FirstOrderAt: t0.UnixMilli(), LastOrderAt: t0.UnixMilli(), OrdersTotal: 3, SpendTotal: 99.5,
			LastCSAT: 4, LastNPS: event.NoScore, ValueTier: event.TierMedium, BaselineSource: "personal",
			ActiveReasons: []event.Reason{event.ReasonPurchaseLapse},
		}
	}
	return out
}

// BenchmarkBuild: turning a batch of 50k customers into columns, with the
// content hash the dedup token needs (servers ≥ 22.2) and without (older).
func BenchmarkBuild(b *testing.B) {
	aggs := benchAggregates(50000)
	batch := NewBatch(0)
	for i := range aggs {
		batch.AddAggregate(&aggs[i])
	}
	for _, tokens := range []bool{true, false} {
		b.Run(fmt.Sprintf("tokens=%v", tokens), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				batch.Build(t0, tokens)
			}
			b.ReportMetric(float64(len(aggs)), "rows/op")
		})
	}
}

// BenchmarkFillBatch: filling a new batch with 50k changed customers, as
// the sink does between two flushes (each flush starts a new batch). One
// op is the whole batch.
func BenchmarkFillBatch(b *testing.B) {
	aggs := benchAggregates(50000)
	b.ReportAllocs()
	for b.Loop() {
		batch := NewBatch(0)
		for i := range aggs {
			batch.AddAggregate(&aggs[i])
		}
	}
	b.ReportMetric(float64(len(aggs)), "rows/op")
}
