package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// progress renders one line of live figures from the metrics registry.
type progress struct {
	g      prometheus.Gatherer
	start  time.Time
	last   time.Time
	events map[string]float64
}

func newProgress(g prometheus.Gatherer) *progress {
	return &progress{g: g, start: time.Now(), last: time.Now(), events: map[string]float64{}}
}

// sums adds up each family's samples, by the values of labels (joined
// with "/"; no label: one sum under "").
func sums(fams []*dto.MetricFamily, name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			parts := make([]string, len(labels))
			for _, l := range m.GetLabel() {
				for i, want := range labels {
					if l.GetName() == want {
						parts[i] = l.GetValue()
					}
				}
			}
			key := strings.Join(parts, "/")
			switch {
			case m.Counter != nil:
				out[key] += m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] += m.Gauge.GetValue()
			}
		}
	}
	return out
}

func (p *progress) line() string {
	fams, err := p.g.Gather()
	if err != nil {
		return "progress: " + err.Error()
	}
	now := time.Now()
	dt := now.Sub(p.last).Seconds()
	p.last = now
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] events/s", now.Sub(p.start).Round(time.Second))
	ev := sums(fams, "winback_events_total", "topic")
	for _, t := range sortedKeys(ev) {
		rate := 0.0
		if dt > 0 {
			rate = (ev[t] - p.events[t]) / dt
		}
		fmt.Fprintf(&b, " %s=%.0f", t, rate)
		p.events[t] = ev[t]
	}
	fmt.Fprintf(&b, " | customers %.0f", sums(fams, "winback_customers_tracked")[""])
	// WINBACK triggers by reason, then the RECOVERED ones apart: a
	// recovery is good news, not another lapse.
	trig := sums(fams, "winback_triggers_total", "kind", "reason")
	b.WriteString(" | WINBACK")
	var winback, recovered float64
	for _, k := range sortedKeys(trig) {
		kind, reason, _ := strings.Cut(k, "/")
		if kind == "WINBACK" {
			fmt.Fprintf(&b, " %s=%.0f", reason, trig[k])
			winback += trig[k]
		} else {
			recovered += trig[k]
		}
	}
	if winback == 0 {
		b.WriteString(" 0")
	}
	fmt.Fprintf(&b, " | RECOVERED %.0f", recovered)
	fmt.Fprintf(&b, " | clickhouse rows %.0f", sums(fams, "winback_clickhouse_rows_total")[""])
	fmt.Fprintf(&b, " | dlq %.0f", sums(fams, "winback_dlq_records_total")[""])
	return b.String()
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
