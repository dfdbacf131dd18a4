package lapse

import (
	"testing"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/window"
)

// refitEngine returns an engine that applied genStream's year of n
// customers, and the next refit boundary after its watermark.
func refitEngine(tb testing.TB, n int) (*Engine, int64) {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Model.RefitDays = 0 // refit by hand below
	e := NewEngine(cfg, 3, wallAt(0))
	stream := genStream(7, n, 365, 0)
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	e.TakeDirty(func(*Customer) {})
	e.p.cfg.Model = DefaultConfig().Model
	period := int64(e.p.cfg.Model.RefitDays) * window.MsPerDay
	return e, e.Watermark()/period*period + period
}

// BenchmarkRefit measures one periodic refit of a task of n customers:
// sampling (a pass hashing every id), the fit of at most refit_sample of
// them warm-started from the parameters in use, and the pass re-pricing
// every customer. "cold" starts each fit from the defaults.
func BenchmarkRefit(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
		cold bool
	}{{"customers=2k/warm", 2000, false}, {"customers=20k/warm", 20000, false}, {"customers=20k/cold", 20000, true}} {
		b.Run(bc.name, func(b *testing.B) {
			e, at := refitEngine(b, bc.n)
			e.refit(at) // the parameters in use become fitted ones
			fitted := e.model
			var evals, iters, sample float64
			e.OnRefit(func(i RefitInfo) {
				evals += float64(i.Fit.Evals)
				iters += float64(i.Fit.Iter)
				sample = float64(i.Sample)
			})
			b.ResetTimer()
			for range b.N {
				if bc.cold {
					e.model = btyd.DefaultParams(btyd.MBGNBD)
				} else {
					e.model = fitted
				}
				e.refit(at)
			}
			b.ReportMetric(evals/float64(b.N), "evals/op")
			b.ReportMetric(iters/float64(b.N), "iter/op")
			b.ReportMetric(sample, "sample")
		})
	}
}
