package consume

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
		}
		r.m.model.refits.WithLabelValues(p, "fitted").Inc()
		r.m.model.duration.WithLabelValues(p).Set(1)
		r.m.model.params.WithLabelValues(p, "r").Set(1)
		r.m.customers.WithLabelValues(p).Set(1)
	}
	r.forgetGauges(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	for name, want := range map[string]int{
		"winback_consumer_lag_records":         5,
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
