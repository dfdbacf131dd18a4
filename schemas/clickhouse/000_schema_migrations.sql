-- The migration ledger. winback runs this file on every Migrate, before it
-- reads which migrations are applied; it is idempotent.
--
-- Every file here is a Go text/template, rendered by sinks/clickhouse at
-- migrate time with: .DB the database; .ActiveDays the activity window of
-- the retention views, in days; .String the type for short repeated strings
-- (LowCardinality(String) where the server supports it, else String);
-- .DedupWindow the non_replicated_deduplication_window (0 where the server
-- cannot use insert_deduplication_token).

CREATE DATABASE IF NOT EXISTS {{.DB}};

CREATE TABLE IF NOT EXISTS {{.DB}}.schema_migrations
(
    version           UInt32,   -- NNN of NNN_name.sql
    name              String,   -- the file name
    checksum          String,   -- sha256 of the file (the template), hex
    rendered_checksum String,   -- sha256 of the SQL as run on this server
    params            String,   -- the template values it was rendered with, e.g. active_days=90
    server_version    String,   -- SELECT version() at the time
    applied_at        DateTime('UTC'),
    seq               UInt64    -- Unix ns of applied_at: the latest row per version wins
)
ENGINE = MergeTree
ORDER BY (version, seq);
