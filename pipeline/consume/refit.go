package consume

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/winback/winback/pipeline/lapse"
)

// modelMetrics follow each task's purchase model, which the engine refits
// at event-time boundaries (lapse.RefitInfo, docs/signals.md).
type modelMetrics struct {
	refits   *prometheus.CounterVec // partition, outcome (fitted, kept)
	duration *prometheus.GaugeVec   // partition
	params   *prometheus.GaugeVec   // partition, param
}

func newModelMetrics() *modelMetrics {
	return &modelMetrics{
		refits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_model_refits_total", Help: "Refits of the purchase model's population parameters, by partition and outcome (fitted, or kept: too few customers or a failed fit).",
		}, []string{"partition", "outcome"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_model_refit_duration_seconds", Help: "Wall time of the last refit of the purchase model (sample, fit, re-pricing every customer), by partition.",
		}, []string{"partition"}),
		params: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_model_param", Help: "The purchase model's population parameters in use (MBG/NBD r, alpha in days, a, b) and the value per purchase behind the CLV, by partition.",
		}, []string{"partition", "param"}),
	}
}

// forget drops the series of a partition the instance no longer holds.
func (m *modelMetrics) forget(partition string) {
	only := prometheus.Labels{"partition": partition}
	m.refits.DeletePartialMatch(only)
	m.duration.DeletePartialMatch(only)
	m.params.DeletePartialMatch(only)
}

func (m *modelMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.refits, m.duration, m.params}
}

// watchRefits logs and counts t's refits.
func (t *task) watchRefits() {
	l := strconv.Itoa(int(t.p))
	t.eng.OnRefit(func(i lapse.RefitInfo) {
		outcome := "kept"
		if i.Fitted {
			outcome = "fitted"
		}
		t.m.model.refits.WithLabelValues(l, outcome).Inc()
		t.m.model.duration.WithLabelValues(l).Set(i.Duration.Seconds())
		t.modelGauges()
		args := []any{"partition", t.p, "at", time.UnixMilli(i.At).UTC().Format(time.RFC3339), "outcome", outcome,
			"sample", i.Sample, "customers", i.Customers, "model", i.After.String(), "value_per_purchase", i.PopAOV,
			"evaluations", i.Fit.Evals, "log_likelihood_gain", i.Fit.LL - i.Fit.LL0,
			"next", time.UnixMilli(i.Next).UTC().Format(time.RFC3339), "duration", i.Duration.Round(time.Microsecond)}
		if i.Err != nil {
			t.log.Warn("consume: purchase model refit failed, parameters kept", append(args, "err", i.Err)...)
			return
		}
		t.log.Info("consume: purchase model refitted", args...)
	})
}

// modelGauges sets the gauges of t's purchase model in use.
func (t *task) modelGauges() {
	l := strconv.Itoa(int(t.p))
	p := t.eng.PurchaseModel()
	for _, g := range [...]struct {
		name string
		v    float64
	}{{"r", p.R}, {"alpha", p.Alpha}, {"a", p.A}, {"b", p.B}, {"value_per_purchase", t.eng.PopulationOrderValue()}} {
		t.m.model.params.WithLabelValues(l, g.name).Set(g.v)
	}
}
