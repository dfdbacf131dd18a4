package consume

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestForgetGauges: a revoked partition leaves no series behind, the
// repartition topic's lag and the purchase model's included; the other
// partitions' series stay.
func TestForgetGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r := &Runner{env: &env{m: newMetrics(reg)}}
	r.cfg.Topics = Topics{Orders: "o", Email: "e", Support: "s", Erasures: "x", Repartition: "g-repartition"}
	for _, p := range []string{"0", "1"} {
		for _, topic := range []string{"o", "e", "s", "x", "g-repartition"} {
			r.m.consumerLag.WithLabelValues(topic, p).Set(1)
			r.m.consumerUncommitted.WithLabelValues(topic, p).Set(1)
		}
		r.m.model.refits.WithLabelValues(p, "fitted").Inc()
		r.m.model.duration.WithLabelValues(p).Set(1)
		r.m.model.params.WithLabelValues(p, "r").Set(1)
		r.m.customers.WithLabelValues(p).Set(1)
	}
	r.forgetGauges(1)
	got := seriesCounts(t, reg)
	for name, want := range map[string]int{
		"winback_consumer_lag_records":         5,
		"winback_consumer_uncommitted_records": 5,
		"winback_model_refits_total":           1,
		"winback_model_refit_duration_seconds": 1,
		"winback_model_param":                  1,
		"winback_customers_tracked":            1,
	} {
		if got[name] != want {
			t.Errorf("%s: %d series, want %d (partition 0's)", name, got[name], want)
		}
	}
}

// TestCountedOnCommit: a task's dead letters reach
// winback_dlq_records_total and winback_events_total{outcome="dlq"} when
// the transaction that wrote them commits; an aborted transaction's are
// dropped (its replay dead-letters and counts them again).
func TestCountedOnCommit(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r := truthRunner(&recSink{}, time.Unix(1e9, 0))
	r.m = newMetrics(reg)
	r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support = "o", "e", "s"
	tk := r.newTask(0, inputPositions{})
	value := func(name string, labels ...string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for i := 0; i < len(labels); i += 2 {
					if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
						return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
					}) {
						continue next
					}
				}
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	}
	txn := func(commit bool) {
		r.cur.reset()
		tk.deadLetter(&kgo.Record{Topic: "o", Value: []byte("{")}, errors.New("bad"))
		tk.out.recs = tk.out.recs[:0] // the dead-letter record: no session to produce it to here
		r.collect(tk)
		if commit {
			r.cur.count(r.m)
		}
	}
	txn(false) // aborted
	if ev, dlq := value("winback_events_total"), value("winback_dlq_records_total"); ev != 0 || dlq != 0 {
		t.Fatalf("an aborted transaction counted %v events and %v dead letters", ev, dlq)
	}
	txn(true) // its replay, committed
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"winback_events_total", []string{"topic", "o", "outcome", "dlq"}, 1},
		{"winback_dlq_records_total", nil, 1},
	} {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestUncommittedGauge: a fetch's high watermark minus its last stable
// offset is the records behind an open transaction; lag counts only to the
// last stable offset (what winback can read).
func TestUncommittedGauge(t *testing.T) {
	m := newMetrics(nil)
	s := source{uncommitted: m.consumerUncommitted.WithLabelValues("o", "0"), lag: m.consumerLag.WithLabelValues("o", "0")}
	for _, c := range []struct{ hwm, lso, want int64 }{{122, 117, 5}, {117, 117, 0}, {10, -1, 0}} {
		s.uncommitted.Set(0)
		s.noteUncommitted(kgo.FetchTopicPartition{FetchPartition: kgo.FetchPartition{HighWatermark: c.hwm, LastStableOffset: c.lso}})
		var mm dto.Metric
		if err := s.uncommitted.Write(&mm); err != nil {
			t.Fatal(err)
		}
		if got := mm.GetGauge().GetValue(); got != float64(c.want) {
			t.Errorf("hwm %d, lso %d: %v, want %d", c.hwm, c.lso, got, c.want)
		}
	}
}

// TestZeroSeries: the counters whose label values are known at start
// exist at 0 before their first event.
func TestZeroSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(reg)
	m.zero(Topics{Orders: "o", Email: "e", Support: "s"})
	got := seriesCounts(t, reg)
	for name, want := range map[string]int{"winback_repartitioned_records_total": 3, "winback_abort_restores_total": 4, "winback_erasures_total": 2} {
		if got[name] != want {
			t.Errorf("%s: %d series, want %d", name, got[name], want)
		}
	}
}

// seriesCounts returns the number of series of each metric reg gathers.
func seriesCounts(t *testing.T, reg prometheus.Gatherer) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	return got
}
