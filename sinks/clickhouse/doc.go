// Package clickhouse writes winback's per-customer aggregates, win-back
// triggers and dead-letter records to ClickHouse, and creates the tables
// (with the materialized view that keeps the daily snapshots) and the
// views analysts and BI tools read.
//
// # Writing
//
// Add (a task's rows at once), AddAggregate, AddTrigger and AddDeadLetter
// add rows to a pending batch without I/O. Within the batch only the
// latest version of a customer per event-time day is kept, one row per
// trigger id and per dead-lettered record. Flush writes the batch, one columnar insert per table over the
// native protocol (in blocks of 8192 rows, so that the driver's buffers
// stay small), and blocks until ClickHouse confirmed every row. The
// materialized view customer_daily_feed copies the aggregate rows into
// customer_daily as they are inserted, so the daily history costs winback
// no second insert. On an error it retries with exponential backoff (from 100 ms,
// doubling, capped at Config.MaxRetryBackoff, jittered over the upper
// half) until its context is done. The stream runner starts a flush
// (StartFlush) once the Kafka transaction that produced the rows has
// committed, and commits the next transaction only after it confirmed, so
// ClickHouse receives only committed work, consumption pauses while
// ClickHouse is down and memory stays bounded. Discard drops the rows of
// an aborted transaction before any write. NeedsFlush says when a
// batch is full: BatchRows rows pending.
//
// Writes are idempotent. The tables are ReplacingMergeTree: aggregates and
// daily snapshots are versioned by the customer's state version (the
// partition's state epoch in the high 32 bits), which a replay reproduces; triggers are keyed by their deterministic trigger_id
// (the latest emitted_at wins: the attempt whose transaction committed);
// dead letters by (topic, partition, offset). Every view reads with FINAL,
// so rows written twice never count twice, merged or not.
//
// # Server versions
//
// Open runs SELECT version() and picks Features; it logs what it uses.
//
//	feature                              needs   on 18.16        on 22.2+ (production)
//	ReplacingMergeTree(ver), FINAL       any     yes             yes
//	DateTime('UTC'), Nullable, Nested    any     yes             yes
//	LowCardinality(String) for tiers,    20.1    no: String      yes
//	  reasons, actions, topics
//	insert_deduplication_token on each   22.2    no              yes: sha256 of the batch's
//	  insert + non_replicated_                                     content without updated_at
//	  deduplication_window on the tables                          (Config.DedupWindow, 1000),
//	  + deduplicate_blocks_in_                                     so a retry also reaches
//	  dependent_materialized_views = 1                             customer_daily_feed
//	string-valued query settings         22.2    no: only int    yes
//	                                             and bool sent
//	async_insert                         21.11   not available   available, not used: winback
//	                                                              batches itself and must know
//	                                                              the rows are stored before it
//	                                                              commits
//	DELETE FROM (lightweight delete),    23.3    no: ALTER TABLE yes: rows hidden at once
//	  for erasure and eviction                   ... DELETE
//	                                             (a mutation)
//	insert_distributed_sync (int)        18.1    yes             yes: cluster mode only
//	insert_quorum (int), replicated      20.3    no: it stalls   yes: replicas per shard
//	  cluster mode                               mutations (#7133)
//	table TTL (ALTER TABLE ... MODIFY    19.6    no: ignored,    yes, where configured
//	  TTL) on customer_daily, triggers,          with a warning  (Config.TTL; migration 091)
//	  dead letters
//	DateTime64, Map, Bool, JSON          20+     not available   not used: times are DateTime
//	                                                              (seconds), bools UInt8, the
//	                                                              evidence map two arrays
//
// On 18.16 idempotence rests on ReplacingMergeTree alone: a replayed batch
// is inserted again and collapses under FINAL and in merges. From 22.2 the
// replayed batch is also dropped at insert time. The DDL that differs by
// version is rendered from templates (see Migrations); both branches are
// tested: the integration tests run on the 18.16 server, the chDB test
// (sinks/clickhouse/chdbtest) on ClickHouse 26 in process.
//
// # Migrations
//
// Migrate applies schemas.ClickHouseMigrations(): NNN_name.sql files that
// are Go text/templates, rendered with the database (Config.Database,
// created if missing), the activity window (Config.ActiveDays) and the
// version-dependent types and settings. The ledger is
// <db>.schema_migrations (version, name, checksum of the file, checksum of
// the rendered SQL, params, server_version, applied_at). A new migration
// runs and is recorded; an applied one whose file changed is an error that
// names the file (*MigrationChecksumError: put changes in a new file); an
// applied one whose rendered SQL changed (another ActiveDays, a server
// upgrade) runs again: every migration is idempotent. Running Migrate twice
// is a no-op.
//
// Views cannot take parameters on 18.16, so "active" (ordered within
// ActiveDays days) is rendered into customer_months and customer_weeks at
// migrate time; changing ActiveDays and running Migrate re-creates those two
// views and records the new value in schema_migrations.params, and the
// retention views show it in their active_days column.
//
// # Cluster mode
//
// With Config.Cluster set (cluster.go), Migrate renders the same migration
// files for a cluster (chsql's cluster.go): local tables <name>_local on
// every node (Replicated* with Config.Replicated) under Distributed tables
// of the original names, sharded by cityHash64(customer_id), so FINAL per
// shard is FINAL over the table; DDL runs ON CLUSTER where the servers
// have ZooKeeper, else on each host of system.clusters. Inserts go to the
// Distributed tables with insert_distributed_sync = 1 (and insert_quorum
// with replicas, from 20.3); erasure deletes from every node's local
// tables.
// Migrate takes a lock in schema_lock before it runs anything (chsql's
// lock.go), on one node too, so instances that start together migrate
// once.
//
// # Tables and views
//
// Tables: customer_aggregates (one row per customer), customer_daily (a
// snapshot per customer per event-time day on which it changed, filled by
// the materialized view customer_daily_feed),
// winback_triggers, dlq_records, schema_migrations. Views: retention_monthly,
// retention_weekly (CRR, churn), kpi_monthly, kpi_weekly (orders, revenue,
// AOV, purchase frequency, CLV estimate), customer_kpis (repeat-purchase
// rate and lifetime KPIs), value_risk_matrix and customers_at_risk (value
// tier × risk band), winback_funnel (recoveries per reason and action),
// engagement_by_tier, support_by_tier; and the helpers customer_history,
// customer_months, customer_weeks. docs/clickhouse.md explains them with
// example queries; each .sql file documents its columns.
//
// # Metrics
//
// Registered on the prometheus.Registerer given to Open:
//
//	winback_clickhouse_rows_total{table}     counter    rows ClickHouse confirmed
//	winback_clickhouse_batches_total{table}  counter    inserts ClickHouse confirmed
//	winback_clickhouse_errors_total{table}   counter    failed insert attempts
//	winback_clickhouse_retries_total         counter    attempts repeated after an error
//	winback_clickhouse_flush_seconds         histogram  time Flush took, retries included
//	winback_clickhouse_pending_rows          gauge      rows waiting for the next Flush
//	winback_clickhouse_discarded_rows_total  counter    rows of aborted transactions, dropped unwritten
package clickhouse
