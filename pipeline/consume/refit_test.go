package consume

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// TestRefitsLoggedAndCounted: a task's refits show in the log (Info, with
// the parameters) and in the refit metrics, and the parameter gauges
// follow the model in use; the engine asks for its meta to be written.
func TestRefitsLoggedAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	r := &Runner{env: &env{m: newMetrics(reg), log: slog.New(slog.NewTextHandler(&logs, nil))}}
	cfg := lapse.DefaultConfig()
	cfg.IdleTimeout = 0
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &task{env: r.env, p: 3, eng: lapse.NewEngine(cfg, 1, start)} // orders only
	tk.watchRefits()
	// 300 weekly to monthly buyers over 60 days, in event-time order.
	type ev struct {
		t  time.Time
		id string
	}
	var evs []ev
	for i := range 300 {
		every := time.Duration(7+i%24) * 24 * time.Hour
		for at := start.Add(time.Duration(i) * time.Hour); at.Before(start.AddDate(0, 0, 60)); at = at.Add(every) {
			evs = append(evs, ev{at, fmt.Sprintf("c%03d", i)})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return a.t.Compare(b.t) })
	for i, e := range evs {
		o := event.Event{Kind: event.KindOrder, OrderType: event.OrderPlaced, CustomerID: e.id, EventID: fmt.Sprint(i),
			Time: e.t.UnixMilli(), Amount: 30, Currency: "EUR", Items: 1, CSAT: event.NoScore, NPS: event.NoScore}
		tk.eng.Apply(nil, lapse.SourceOrders, &o, e.t)
	}
	l := "3"
	fitted := value(t, r.m.model.refits.WithLabelValues(l, "fitted"))
	kept := value(t, r.m.model.refits.WithLabelValues(l, "kept"))
	if fitted < 3 || fitted+kept != float64(tk.eng.Stats().Refits) {
		t.Fatalf("refits: %v fitted, %v kept; engine %d", fitted, kept, tk.eng.Stats().Refits)
	}
	p := tk.eng.PurchaseModel()
	if got := value(t, r.m.model.params.WithLabelValues(l, "alpha")); got != p.Alpha {
		t.Fatalf("alpha gauge %v, model %v", got, p)
	}
	if got := value(t, r.m.model.params.WithLabelValues(l, "value_per_purchase")); got != 30 {
		t.Fatalf("value_per_purchase gauge %v, want 30", got)
	}
	if d := value(t, r.m.model.duration.WithLabelValues(l)); !(d > 0) {
		t.Fatalf("refit duration gauge %v", d)
	}
	out := logs.String()
	if n := strings.Count(out, "level=INFO msg=\"consume: purchase model refitted\""); n != int(fitted+kept) || !strings.Contains(out, "outcome=fitted") || !strings.Contains(out, p.String()) {
		t.Fatalf("%d refit log lines for %v refits:\n%s", n, fitted+kept, out)
	}
	if !tk.eng.TakeMetaDirty() || tk.eng.TakeMetaDirty() {
		t.Fatal("a refit must ask once for the meta to be written")
	}
}

// value reads a counter's or a gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
