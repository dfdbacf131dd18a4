package consume

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events         *prometheus.CounterVec // topic, outcome
	dlq            *prometheus.CounterVec // reason
	triggers       *prometheus.CounterVec // kind, reason, action, tier, treatment
	budgetDelayed  prometheus.Counter
	lateEvents     prometheus.Counter
	duplicates     prometheus.Counter
	customers      *prometheus.GaugeVec   // partition
	timers         *prometheus.GaugeVec   // partition
	stateBytes     *prometheus.GaugeVec   // partition
	watermark      *prometheus.GaugeVec   // partition
	eventTimeLag   *prometheus.GaugeVec   // partition
	consumerLag    *prometheus.GaugeVec   // topic, partition
	restoreRecords *prometheus.CounterVec // partition
	restoreSeconds prometheus.Histogram
	restoring      prometheus.Gauge
	restores       *prometheus.CounterVec // from: changelog, standby
	standbyTasks   prometheus.Gauge
	standbyLag     *prometheus.GaugeVec // partition
	standbyRecords prometheus.Counter
	txCommits      prometheus.Counter
	txAborts       prometheus.Counter
	abortRollbacks prometheus.Counter
	abortRestores  *prometheus.CounterVec // reason
	triggerLatency prometheus.Histogram
	batchSeconds   prometheus.Histogram
	txRecords      prometheus.Histogram
	txEnds         *prometheus.CounterVec // cause
	cacheBytes     prometheus.Gauge
	assigned       prometheus.Gauge
	repartitioned  *prometheus.CounterVec // topic
	follows        prometheus.Counter
	erasures       *prometheus.CounterVec // state: present, absent
	evictions      prometheus.Counter
	model          *modelMetrics // refit.go
	unconfirmed    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: newCounterVec("winback_events_total",
			"Input records consumed, by topic and outcome (ok, dlq, duplicate, late).", "topic", "outcome"),
		dlq: newCounterVec("winback_dlq_records_total",
			"Records sent to the dead-letter topic, by reason.", "reason"),
		triggers: newCounterVec("winback_triggers_total",
			"Triggers emitted (committed), by kind, primary reason, recommended action, value tier and treatment (TREATED, or CONTROL: the holdout).", "kind", "reason", "action", "tier", "treatment"),
		budgetDelayed: newCounter("winback_budget_delayed_triggers_total",
			"WINBACK triggers (committed) that the contact budget held back before sending (evidence budget_delayed_days)."),
		lateEvents: newCounter("winback_late_events_total",
			"Events behind the watermark: counted in the aggregates, never re-firing a trigger."),
		duplicates: newCounter("winback_duplicate_events_total",
			"Input events ignored because their event_id was already applied."),
		customers: newGaugeVec("winback_customers_tracked",
			"Customers held in state, by partition.", "partition"),
		timers: newGaugeVec("winback_timers_pending",
			"Silence timers armed, by partition.", "partition"),
		stateBytes: newGaugeVec("winback_state_bytes",
			"Estimated bytes of state (average snapshot size times customers), by partition.", "partition"),
		watermark: newGaugeVec("winback_watermark_seconds",
			"Event-time watermark of each partition, Unix seconds.", "partition"),
		eventTimeLag: newGaugeVec("winback_event_time_lag_seconds",
			"Wall clock minus the watermark, by partition.", "partition"),
		consumerLag: newGaugeVec("winback_consumer_lag_records",
			"High watermark minus the next offset to process, by topic and partition.", "topic", "partition"),
		restoreRecords: newCounterVec("winback_restore_records_total",
			"Changelog records read while restoring state, by partition.", "partition"),
		restoreSeconds: newHistogram("winback_restore_duration_seconds",
			"Time to restore a partition's state from the changelog.", prometheus.ExponentialBuckets(0.01, 2, 14)),
		restoring: newGauge("winback_restoring_partitions",
			"Partitions currently being restored from the changelog."),
		restores: newCounterVec("winback_restores_total",
			"Tasks restored, by where their state came from: changelog (read from its start) or standby (a standby's warm copy, caught up from its offset).", "from"),
		standbyTasks: newGauge("winback_standby_tasks",
			"Standby tasks this instance keeps (warm copies of other instances' tasks)."),
		standbyLag: newGaugeVec("winback_standby_lag_records",
			"Changelog records a standby has yet to apply (the last stable offset minus its next offset), by partition.", "partition"),
		standbyRecords: newCounter("winback_standby_records_total",
			"Changelog records applied to standby tasks."),
		txCommits: newCounter("winback_transactions_committed_total",
			"Kafka transactions committed."),
		txAborts: newCounter("winback_transactions_aborted_total",
			"Kafka transactions aborted (rebalance, fencing or a failed write)."),
		abortRollbacks: newCounter("winback_abort_rollbacks_total",
			"Tasks that an aborted transaction rolled back in memory to their last commit (the customers it touched got their previous snapshots back), without a changelog restore."),
		abortRestores: newCounterVec("winback_abort_restores_total",
			"Tasks restored from the changelog after an aborted transaction, by reason: outcome_unknown (ending the transaction failed), unconfirmed (ClickHouse had not confirmed the task's last commit), undo_log (no commit yet since the task was installed, or the undo log outgrew its bound), positions (the committed offsets could not be read).", "reason"),
		triggerLatency: newHistogram("winback_trigger_latency_seconds",
			"From the arrival of the event that made a trigger due to the commit of the trigger.", prometheus.ExponentialBuckets(0.005, 2, 14)),
		batchSeconds: newHistogram("winback_batch_duration_seconds",
			"Wall time of one transaction: process, write ClickHouse, commit.", prometheus.ExponentialBuckets(0.005, 2, 14)),
		txRecords: newHistogram("winback_transaction_records",
			"Input records polled in one transaction.", prometheus.ExponentialBuckets(1, 4, 12)),
		txEnds: newCounterVec("winback_transaction_ends_total",
			"Why transactions stopped taking input: interval (commit_interval passed), max_poll_records, cache (state.cache_max_bytes), batch_rows (clickhouse.batch_rows), failed, shutdown.", "cause"),
		cacheBytes: newGauge("winback_cache_bytes",
			"Bytes the open transaction holds for its commit (estimate: changed customers × average snapshot size, plus the closed customer-days' ClickHouse rows)."),
		assigned: newGauge("winback_partitions_assigned",
			"Input partitions (tasks) owned by this instance."),
		repartitioned: newCounterVec("winback_repartitioned_records_total",
			"Input records forwarded to the repartition topic because their key or partitioner did not place them in their customer's task, by input topic.", "topic"),
		erasures: newCounterVec("winback_erasures_total",
			"Erasure requests applied (committed), by whether the task held state for the customer (present, absent).", "state"),
		evictions: newCounter("winback_evictions_total",
			"Customers evicted (committed) after state.ttl_days of event time without a change."),
		follows: newCounter("winback_event_time_follows_total",
			"Times a quiet task raised its watermark to the pipeline's event time."),
		model: newModelMetrics(),
		unconfirmed: newGauge("winback_clickhouse_unconfirmed",
			"1 while ClickHouse may lack rows of a transaction that is committed (or committing) in Kafka; 0 once the sink confirmed them."),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.dlq, m.triggers, m.lateEvents, m.duplicates, m.customers, m.timers,
			m.stateBytes, m.watermark, m.eventTimeLag, m.consumerLag, m.restoreRecords, m.restoreSeconds,
			m.restoring, m.restores, m.standbyTasks, m.standbyLag, m.standbyRecords, m.txCommits, m.txAborts, m.abortRollbacks, m.abortRestores,
			m.triggerLatency, m.batchSeconds, m.assigned,
			m.txRecords, m.txEnds, m.cacheBytes,
			m.repartitioned, m.follows, m.erasures, m.evictions, m.unconfirmed, m.budgetDelayed)
		reg.MustRegister(m.model.collectors()...)
	}
	return m
}

// newCounter, newCounterVec, newGauge, newGaugeVec and newHistogram make
// the metrics above from a name and a help text, and the label names or
// the buckets.
func newCounter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func newCounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func newGauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func newGaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func newHistogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}
