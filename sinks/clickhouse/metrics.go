package clickhouse

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rows    *prometheus.CounterVec
	batches *prometheus.CounterVec
	errors  *prometheus.CounterVec
	retries prometheus.Counter
	flush   prometheus.Histogram
	pending prometheus.Gauge
	// discarded counts rows of aborted transactions, never written.
	discarded prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_clickhouse_rows_total",
			Help: "Rows ClickHouse confirmed, by table.",
		}, []string{"table"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_clickhouse_batches_total",
			Help: "Inserts ClickHouse confirmed, by table.",
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_clickhouse_errors_total",
			Help: "Failed insert attempts, by table.",
		}, []string{"table"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_clickhouse_retries_total",
			Help: "Insert attempts repeated after an error.",
		}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "winback_clickhouse_flush_seconds",
			Help:    "Time Flush took, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 262 s
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_clickhouse_pending_rows",
			Help: "Rows waiting for the next flush.",
		}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_clickhouse_discarded_rows_total",
			Help: "Rows of aborted transactions, dropped before any write.",
		}),
	}
	for _, t := range tableNames {
		m.rows.WithLabelValues(t)
		m.batches.WithLabelValues(t)
		m.errors.WithLabelValues(t)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rows, m.batches, m.errors, m.retries, m.flush, m.pending, m.discarded} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
