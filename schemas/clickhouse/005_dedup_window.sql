-- On servers that support insert_deduplication_token (22.2+), keep the
-- hashes of the last .DedupWindow inserted blocks per table, so a
-- batch written again after a replay is dropped at insert time. Tables
-- created on an older server get the setting here when the server is
-- upgraded (this migration's rendered text changes, so it runs again). On
-- older servers it renders to nothing.
{{if .DedupWindow}}
ALTER TABLE {{.DB}}.customer_aggregates MODIFY SETTING non_replicated_deduplication_window = {{.DedupWindow}};
ALTER TABLE {{.DB}}.customer_daily MODIFY SETTING non_replicated_deduplication_window = {{.DedupWindow}};
ALTER TABLE {{.DB}}.winback_triggers MODIFY SETTING non_replicated_deduplication_window = {{.DedupWindow}};
ALTER TABLE {{.DB}}.dlq_records MODIFY SETTING non_replicated_deduplication_window = {{.DedupWindow}};
{{end}}
