package main

import (
	"cmp"
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
// /metrics when it caught up: where the wall time and the ClickHouse CPU
// go, what bounded its transactions, and the triggers it emitted.
type winbackWork struct {
	Run            string             `json:"run"`
	Interval       string             `json:"commit_interval"`
	IntervalS      float64            `json:"commit_interval_s"`
	MaxPollRecords int                `json:"max_poll_records"`
	BatchRows      int                `json:"clickhouse_batch_rows"`
	Events         int64              `json:"events"` // input records of the run
	Transactions   float64            `json:"transactions"`
	BatchSeconds   float64            `json:"batch_s"`            // summed wall time of the transactions
	FlushSeconds   float64            `json:"clickhouse_flush_s"` // of which waiting for ClickHouse
	Rows           map[string]float64 `json:"clickhouse_rows"`    // by table
	Inserts        float64            `json:"clickhouse_inserts"` // inserts ClickHouse confirmed, every table
	Triggers       map[string]float64 `json:"triggers"`           // committed, by kind/reason
	HeapBytes      float64            `json:"heap_bytes"`         // go_memstats_heap_alloc_bytes
	Customers      float64            `json:"customers_tracked"`
	Latency        *latencyResult     `json:"latency,omitempty"` // the live probe after it caught up
	// Ends counts why transactions stopped taking input
	// (winback_transaction_ends_total{cause}): interval, max_poll_records,
	// cache, batch_rows, failed, shutdown.
	Ends map[string]float64 `json:"transaction_ends,omitempty"`
}

// TriggerCount is the number of triggers the run emitted (committed).
func (w *winbackWork) TriggerCount() float64 {
	var n float64
	for _, v := range w.Triggers {
		n += v
	}
	return n
}

// HeapPerCustomer is the process's heap over the customers it tracks (0
// if either is unknown).
func (w *winbackWork) HeapPerCustomer() float64 {
	if w.Customers <= 0 {
		return 0
	}
	return w.HeapBytes / w.Customers
}

// EventsPerTransaction and MeanTransactionS describe the batches.
func (w *winbackWork) EventsPerTransaction() float64 {
	if w.Transactions <= 0 {
		return 0
	}
	return float64(w.Events) / w.Transactions
}

func (w *winbackWork) MeanTransactionS() float64 {
	if w.Transactions <= 0 {
		return 0
	}
	return w.BatchSeconds / w.Transactions
}

// Bound says what ended the run's transactions on the backlog:
// "max_poll_records" when they held (nearly) that many records; "commit
// interval" when they lasted about that long (0.9 to 2 times it); "one
// poll" when they lasted longer, because the records one poll returned
// took longer than the interval to process; otherwise "neither" (the
// input ran dry).
func (w *winbackWork) Bound() string {
	if len(w.Ends) > 0 { // winback says
		causes := slices.SortedFunc(maps.Keys(w.Ends), func(a, b string) int { return cmp.Compare(w.Ends[b], w.Ends[a]) })
		parts := make([]string, len(causes))
		for i, c := range causes {
			parts[i] = fmt.Sprintf("%s %.0f", c, w.Ends[c])
		}
		return strings.Join(parts, ", ")
	}
	switch t := w.MeanTransactionS(); {
	case w.Transactions <= 0:
		return "–"
	case w.MaxPollRecords > 0 && w.EventsPerTransaction() >= 0.9*float64(w.MaxPollRecords):
		return fmt.Sprintf("max_poll_records (%d)", w.MaxPollRecords)
	case w.IntervalS > 0 && t >= 0.9*w.IntervalS && t <= 2*w.IntervalS:
		return "commit interval"
	case w.IntervalS > 0 && t > 2*w.IntervalS:
		return "one poll (outlasted the interval)"
	}
	return "neither"
}

func (w *winbackWork) summary() string {
	tables := slices.Sorted(maps.Keys(w.Rows))
	rows := make([]string, len(tables))
	for i, t := range tables {
		rows[i] = fmt.Sprintf("%s %.0f", t, w.Rows[t])
	}
	kinds := slices.Sorted(maps.Keys(w.Triggers))
	trig := make([]string, len(kinds))
	for i, k := range kinds {
		trig[i] = fmt.Sprintf("%s %.0f", k, w.Triggers[k])
	}
	return fmt.Sprintf("%s (commit interval %s, max_poll_records %d, clickhouse batch_rows %d): %.0f transactions (%.0f events and %.3f s each on average; bounded by %s), %.2f s in them, of which %.2f s waiting for ClickHouse flushes; %.0f ClickHouse inserts; rows: %s; %.0f triggers emitted: %s",
		w.Run, w.Interval, w.MaxPollRecords, w.BatchRows, w.Transactions, w.EventsPerTransaction(), w.MeanTransactionS(), w.Bound(),
		w.BatchSeconds, w.FlushSeconds, w.Inserts, strings.Join(rows, ", "), w.TriggerCount(), cmp.Or(strings.Join(trig, ", "), "none"))
}

// workOf reads a winbackWork from a /metrics text.
func workOf(run, text string) winbackWork {
	mfs := parseMetrics(text)
	w := winbackWork{
		Run:          run,
		Transactions: value(mfs, "winback_transactions_committed_total"),
		BatchSeconds: histogramSum(mfs, "winback_batch_duration_seconds"),
		FlushSeconds: histogramSum(mfs, "winback_clickhouse_flush_seconds"),
		Inserts:      value(mfs, "winback_clickhouse_batches_total"),
		HeapBytes:    value(mfs, "go_memstats_heap_alloc_bytes"),
		Customers:    value(mfs, "winback_customers_tracked"),
		Rows:         map[string]float64{},
		Triggers:     map[string]float64{},
	}
	for _, m := range mfs["winback_clickhouse_rows_total"].GetMetric() {
		if t := label(m, "table"); t != "" {
			w.Rows[t] += m.GetCounter().GetValue()
		}
	}
	for _, m := range mfs["winback_transaction_ends_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v > 0 {
			if w.Ends == nil {
				w.Ends = map[string]float64{}
			}
			w.Ends[label(m, "cause")] += v
		}
	}
	for _, m := range mfs["winback_triggers_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v > 0 {
			w.Triggers[label(m, "kind")+"/"+label(m, "reason")] += v
		}
	}
	return w
}

// label is the value of a series' label, or "".
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histogramSum is the sum of a histogram's observations over its series.
func histogramSum(mfs map[string]*dto.MetricFamily, name string) float64 {
	var v float64
	for _, m := range mfs[name].GetMetric() {
		v += m.GetHistogram().GetSampleSum()
	}
	return v
}
