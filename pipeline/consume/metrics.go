package consume

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events              *prometheus.CounterVec // topic, outcome
	dlq                 *prometheus.CounterVec // reason
	triggers            *prometheus.CounterVec // kind, reason, action, tier, treatment
	budgetDelayed       prometheus.Counter
	lateEvents          prometheus.Counter
	duplicates          prometheus.Counter
	customers           *prometheus.GaugeVec   // partition
	timers              *prometheus.GaugeVec   // partition
	stateBytes          *prometheus.GaugeVec   // partition
	watermark           *prometheus.GaugeVec   // partition
	eventTimeLag        *prometheus.GaugeVec   // partition
	consumerLag         *prometheus.GaugeVec   // topic, partition
	consumerUncommitted *prometheus.GaugeVec   // topic, partition
	restoreRecords      *prometheus.CounterVec // partition
	restoreSeconds      prometheus.Histogram
	restoring           prometheus.Gauge
	restores            *prometheus.CounterVec // from: changelog, standby
	standbyTasks        prometheus.Gauge
	standbyLag          *prometheus.GaugeVec // partition
	standbyRecords      prometheus.Counter
	txCommits           prometheus.Counter
	txAborts            prometheus.Counter
	abortRollbacks      prometheus.Counter
	abortRestores       *prometheus.CounterVec // reason
	triggerLatency      prometheus.Histogram
	batchSeconds        prometheus.Histogram
	txRecords           prometheus.Histogram
	txEnds              *prometheus.CounterVec // cause
	cacheBytes          prometheus.Gauge
	assigned            prometheus.Gauge
	repartitioned       *prometheus.CounterVec // topic
	follows             prometheus.Counter
	erasures            *prometheus.CounterVec // state: present, absent
	evictions           prometheus.Counter
	model               *modelMetrics // refit.go
	unconfirmed         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_events_total", Help: "Input records consumed, by topic and outcome (ok, dlq, duplicate, late).",
		}, []string{"topic", "outcome"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_dlq_records_total", Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_triggers_total", Help: "Triggers emitted (committed), by kind, primary reason, recommended action, value tier and treatment (TREATED, or CONTROL: the holdout).",
		}, []string{"kind", "reason", "action", "tier", "treatment"}),
		budgetDelayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_budget_delayed_triggers_total", Help: "WINBACK triggers (committed) that the contact budget held back before sending (evidence budget_delayed_days).",
		}),
		lateEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_late_events_total", Help: "Events behind the watermark: counted in the aggregates, never re-firing a trigger.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_duplicate_events_total", Help: "Input events ignored because their event_id was already applied.",
		}),
		customers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_customers_tracked", Help: "Customers held in state, by partition.",
		}, []string{"partition"}),
		timers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_timers_pending", Help: "Silence timers armed, by partition.",
		}, []string{"partition"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_state_bytes", Help: "Estimated bytes of state (average snapshot size times customers), by partition.",
		}, []string{"partition"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_watermark_seconds", Help: "Event-time watermark of each partition, Unix seconds.",
		}, []string{"partition"}),
		eventTimeLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_event_time_lag_seconds", Help: "Wall clock minus the watermark, by partition.",
		}, []string{"partition"}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_consumer_lag_records", Help: "Last stable offset (the end a read_committed reader can read) minus the next offset to process, by topic and partition.",
		}, []string{"topic", "partition"}),
		consumerUncommitted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_consumer_uncommitted_records", Help: "High watermark minus the last stable offset at the last fetch, by topic and partition: records behind a producer's open transaction, which winback (read_committed) cannot read until it ends; one a producer abandoned ends at the broker's transaction timeout.",
		}, []string{"topic", "partition"}),
		restoreRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_restore_records_total", Help: "Changelog records read while restoring state, by partition.",
		}, []string{"partition"}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "winback_restore_duration_seconds", Help: "Time to restore a partition's state from the changelog.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		restoring: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_restoring_partitions", Help: "Partitions currently being restored from the changelog.",
		}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_restores_total", Help: "Tasks restored, by where their state came from: changelog (read from its start) or standby (a standby's warm copy, caught up from its offset).",
		}, []string{"from"}),
		standbyTasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_standby_tasks", Help: "Standby tasks this instance keeps (warm copies of other instances' tasks).",
		}),
		standbyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "winback_standby_lag_records", Help: "Changelog records a standby has yet to apply (the last stable offset minus its next offset), by partition.",
		}, []string{"partition"}),
		standbyRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_standby_records_total", Help: "Changelog records applied to standby tasks.",
		}),
		txCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_transactions_committed_total", Help: "Kafka transactions committed.",
		}),
		txAborts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_transactions_aborted_total", Help: "Kafka transactions aborted (rebalance, fencing or a failed write).",
		}),
		abortRollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_abort_rollbacks_total", Help: "Tasks that an aborted transaction rolled back in memory to their last commit (the customers it touched got their previous snapshots back), without a changelog restore.",
		}),
		abortRestores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_abort_restores_total", Help: "Tasks restored from the changelog after an aborted transaction, by reason: outcome_unknown (ending the transaction failed), unconfirmed (ClickHouse had not confirmed the task's last commit), undo_log (no commit yet since the task was installed, or the undo log outgrew its bound), positions (the committed offsets could not be read).",
		}, []string{"reason"}),
		triggerLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "winback_trigger_latency_seconds", Help: "From the arrival of the event that made a trigger due to the commit of the trigger.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "winback_batch_duration_seconds", Help: "Wall time of one transaction: process, write ClickHouse, commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		txRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "winback_transaction_records", Help: "Input records polled in one transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}),
		txEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_transaction_ends_total", Help: "Why transactions stopped taking input: interval (commit_interval passed), max_poll_records, cache (state.cache_max_bytes), batch_rows (clickhouse.batch_rows), barrier (to publish a task's forwarding frontier, which the barrier waits for), failed, shutdown.",
		}, []string{"cause"}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_cache_bytes", Help: "Bytes the open transaction holds for its commit (estimate: changed customers × average snapshot size, plus the closed customer-days' ClickHouse rows).",
		}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_partitions_assigned", Help: "Input partitions (tasks) owned by this instance.",
		}),
		repartitioned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_repartitioned_records_total", Help: "Input records forwarded to the repartition topic because their key or partitioner did not place them in their customer's task, by input topic.",
		}, []string{"topic"}),
		erasures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "winback_erasures_total", Help: "Erasure requests applied (committed), by whether the task held state for the customer (present, absent).",
		}, []string{"state"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_evictions_total", Help: "Customers evicted (committed) after state.ttl_days of event time without a change.",
		}),
		follows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "winback_event_time_follows_total", Help: "Times a quiet task raised its watermark to the pipeline's event time.",
		}),
		model: newModelMetrics(),
		unconfirmed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_clickhouse_unconfirmed", Help: "1 while ClickHouse may lack rows of a transaction that is committed (or committing) in Kafka; 0 once the sink confirmed them.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.dlq, m.triggers, m.lateEvents, m.duplicates, m.customers, m.timers,
			m.stateBytes, m.watermark, m.eventTimeLag, m.consumerLag, m.consumerUncommitted, m.restoreRecords, m.restoreSeconds,
			m.restoring, m.restores, m.standbyTasks, m.standbyLag, m.standbyRecords, m.txCommits, m.txAborts, m.abortRollbacks, m.abortRestores,
			m.triggerLatency, m.batchSeconds, m.assigned,
			m.txRecords, m.txEnds, m.cacheBytes,
			m.repartitioned, m.follows, m.erasures, m.evictions, m.unconfirmed, m.budgetDelayed)
		reg.MustRegister(m.model.collectors()...)
	}
	return m
}

// zero creates the series of counters whose label values are known at
// start, so that they read 0 before their first event: rate() and an
// alert on increase() see that first event, and a dashboard shows 0, not
// "no data".
func (m *metrics) zero(t Topics) {
	for _, topic := range []string{t.Orders, t.Email, t.Support} {
		m.repartitioned.WithLabelValues(topic)
	}
	for _, why := range []string{restoreUnknown, restoreUnconfirmed, restoreUndo, restorePositions} {
		m.abortRestores.WithLabelValues(why)
	}
	for _, state := range []string{"present", "absent"} {
		m.erasures.WithLabelValues(state)
	}
}
