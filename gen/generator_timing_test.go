package gen_test

import (
	"io"
	"testing"

	"github.com/winback/winback/gen"
)

// BenchmarkEach measures generation alone: records per second of a
// 1000-customer, 90-day stream.
func BenchmarkEach(b *testing.B) {
	g := newGen(b, gen.Config{Customers: 1000, Days: 90, Seed: 1})
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Each(func(*gen.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWriteJSONL measures generation plus JSON encoding.
func BenchmarkWriteJSONL(b *testing.B) {
	g := newGen(b, gen.Config{Customers: 1000, Days: 90, Seed: 1})
	n := 0
	_ = g.Each(func(*gen.Record) error { n++; return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := g.WriteJSONL(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkNew measures planning (the truth) alone.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := gen.New(gen.Config{Customers: 1000, Days: 365, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
