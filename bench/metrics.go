package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses a /metrics text (Prometheus text format) into its
// metric families, by name. A text that does not parse gives none.
func parseMetrics(text string) map[string]*dto.MetricFamily {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil
	}
	return mfs
}

// value is the sum of a counter's or gauge's values over its series (0
// when the family is missing).
func value(mfs map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range mfs[name].GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v
}

// histogramDelta reads a Prometheus histogram from two /metrics texts and
// returns the count of observations between them and their p50 and p99,
// interpolated linearly within buckets (as histogram_quantile does).
func histogramDelta(before, after, name string) (n, p50, p99 float64) {
	buckets := func(text string) map[float64]float64 {
		m := map[float64]float64{}
		for _, s := range parseMetrics(text)[name].GetMetric() {
			h := s.GetHistogram()
			inf := false
			for _, b := range h.GetBucket() {
				m[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				inf = inf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !inf {
				m[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		return m
	}
	b, a := buckets(before), buckets(after)
	les := slices.Sorted(maps.Keys(a))
	cum := make([]float64, len(les))
	for i, le := range les {
		cum[i] = a[le] - b[le]
	}
	if len(les) == 0 || cum[len(cum)-1] == 0 {
		return 0, 0, 0
	}
	n = cum[len(cum)-1]
	q := func(q float64) float64 {
		target := q * n
		lo, prev := 0.0, 0.0
		for i, le := range les {
			if cum[i] >= target {
				if math.IsInf(le, 1) {
					return lo
				}
				if cum[i] == prev {
					return le
				}
				return lo + (le-lo)*(target-prev)/(cum[i]-prev)
			}
			lo, prev = le, cum[i]
		}
		return lo
	}
	return n, q(0.5), q(0.99)
}

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// winbackWork is what a winback run did to get through the stream, from its
// /metrics when it caught up: where the wall time and the ClickHouse CPU go.
type winbackWork struct {
	Run          string             `json:"run"`
	Transactions float64            `json:"transactions"`
	BatchSeconds float64            `json:"batch_s"`            // summed wall time of the transactions
	FlushSeconds float64            `json:"clickhouse_flush_s"` // of which waiting for ClickHouse
	Rows         map[string]float64 `json:"clickhouse_rows"`    // by table
}

func (w *winbackWork) summary() string {
	tables := slices.Sorted(maps.Keys(w.Rows))
	rows := make([]string, len(tables))
	for i, t := range tables {
		rows[i] = fmt.Sprintf("%s %.0f", t, w.Rows[t])
	}
	return fmt.Sprintf("%s: %.0f transactions, %.2f s in them, of which %.2f s waiting for ClickHouse flushes; ClickHouse rows: %s",
		w.Run, w.Transactions, w.BatchSeconds, w.FlushSeconds, strings.Join(rows, ", "))
}

// workOf reads a winbackWork from a /metrics text.
func workOf(run, text string) winbackWork {
	mfs := parseMetrics(text)
	w := winbackWork{
		Run:          run,
		Transactions: value(mfs, "winback_transactions_committed_total"),
		BatchSeconds: histogramSum(mfs, "winback_batch_duration_seconds"),
		FlushSeconds: histogramSum(mfs, "winback_clickhouse_flush_seconds"),
		Rows:         map[string]float64{},
	}
	for _, m := range mfs["winback_clickhouse_rows_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "table" {
				w.Rows[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return w
}

// histogramSum is the sum of a histogram's observations over its series.
func histogramSum(mfs map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range mfs[name].GetMetric() {
		v += m.GetHistogram().GetSampleSum()
	}
	return v
}
