// Package consume runs winback's stream tasks: it consumes the three input
// topics in a consumer group, keeps one lapse.Engine per partition number
// (a task), restores each task from the compacted changelog when the
// partition is assigned, and commits the input offsets, the changelog
// records, the triggers and the dead letters in one Kafka transaction, after
// ClickHouse has confirmed the rows of the same batch. Erasure requests
// (GDPR, CCPA) come on a fifth, co-partitioned topic and are applied in
// the same transactions (erase.go).
//
// The inputs must be co-partitioned: the same partition count and the same
// key (customer_id) with the same partitioner, so that a customer's orders,
// emails and tickets land in one task. The group uses TaskBalancer
// (balancer.go), which gives a member the same partition numbers of every
// topic, keeps tasks where they are, and moves them cooperatively: only
// the tasks that move are revoked (franz-go's cooperative-sticky would not
// keep the topics together).
//
// With Config.StandbyReplicas, members also keep standby tasks: warm copies
// of tasks other members own, kept current by tailing their changelog
// partitions (standby.go). The balancer places them and gives a task whose
// owner left to a member keeping a standby of it (standby_assign.go), which
// then reads only the changelog's tail instead of restoring the task.
//
// Metrics (all prefixed winback_):
//
//	events_total{topic,outcome}            input records by outcome: ok, dlq, duplicate, late
//	dlq_records_total{reason}              records sent to the dead-letter topic
//	triggers_total{kind,reason,action,tier,treatment} committed triggers
//	budget_delayed_triggers_total          committed triggers the contact budget held back
//	late_events_total                      events behind the watermark
//	duplicate_events_total                 events ignored for a repeated event_id
//	customers_tracked{partition}           customers in state
//	timers_pending{partition}              silence timers armed
//	state_bytes{partition}                 bytes of the customers' latest snapshots
//	watermark_seconds{partition}           event-time watermark
//	event_time_lag_seconds{partition}      wall clock minus watermark
//	consumer_lag_records{topic,partition}  high watermark minus the next offset
//	restore_records_total{partition}       changelog records read while restoring
//	restore_duration_seconds               time to restore one partition
//	restoring_partitions                   partitions being restored now
//	restores_total{from}                   tasks restored: from the changelog, or from a standby's copy
//	standby_tasks                          standby tasks kept (warm copies of other instances' tasks)
//	standby_lag_records{partition}         changelog records a standby has yet to apply
//	standby_records_total                  changelog records applied to standbys
//	transactions_committed_total           Kafka transactions committed
//	transactions_aborted_total             Kafka transactions aborted
//	abort_rollbacks_total                  tasks an abort rolled back in memory (rollback.go)
//	abort_restores_total{reason}           tasks an abort restored from the changelog instead
//	trigger_latency_seconds                event arrival to trigger commit
//	batch_duration_seconds                 one transaction, end to end
//	transaction_ends_total{cause}          why a transaction stopped taking input
//	transaction_records                    input records polled per transaction
//	cache_bytes                            changelog bytes the open transaction's changed customers will write
//	partitions_assigned                    tasks owned by this instance
//	repartitioned_records_total{topic}     input records forwarded to the repartition topic
//	event_time_follows_total               quiet tasks raised to the pipeline's event time
//	erasures_total{state}                  erasure requests applied: present, absent (no state held)
//	evictions_total                        customers evicted by state.ttl_days
//	clickhouse_unconfirmed                 1 while ClickHouse may lack a committed transaction's rows
package consume
