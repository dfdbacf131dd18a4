-- Table TTLs, where the server has them (19.6+; 18.16 has none, so on it
-- this migration renders to no statement) and where they are configured
-- (clickhouse.ttl_daily_days, ttl_trigger_days, ttl_dead_letter_days; 0,
-- the default, renders nothing for the table): ClickHouse deletes the
-- rows older than that in its merges.
--   customer_daily    by day (partitioned by month: 002, so whole months
--                     go at once once merged)
--   winback_triggers  by as_of, the trigger's event time
--   dlq_records       by at, when the record was dead-lettered
-- Changing a value changes the rendered text, so the migration runs again
-- with the new TTL; setting it back to 0 leaves the TTL in place (remove
-- it with ALTER TABLE ... REMOVE TTL, docs/scaling.md). Rows of
-- customer_history_state and trigger_outcome_state, per customer, have
-- no TTL: the retention views and winback_trigger_outcomes keep seeing
-- the days and triggers that expired here.
{{if .TTLDaily}}
ALTER TABLE {{.DB}}.customer_daily MODIFY TTL day + INTERVAL {{.TTLDaily}} DAY;
{{end}}{{if .TTLTriggers}}
ALTER TABLE {{.DB}}.winback_triggers MODIFY TTL as_of + INTERVAL {{.TTLTriggers}} DAY;
{{end}}{{if .TTLDeadLetters}}
ALTER TABLE {{.DB}}.dlq_records MODIFY TTL at + INTERVAL {{.TTLDeadLetters}} DAY;
{{end}}
