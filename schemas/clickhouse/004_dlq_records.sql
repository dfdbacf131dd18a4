-- Input records winback sent to the dead-letter topic, one row per
-- (topic, partition, offset). sample holds at most the first few hundred
-- bytes of the value (sinks/clickhouse Config.DLQSampleBytes), never the
-- whole payload.
CREATE TABLE IF NOT EXISTS {{.DB}}.dlq_records
(
    topic      {{.String}},
    partition  Int32,
    offset     Int64,
    key        String,
    reason     {{.String}},       -- stable code, e.g. avro.unknown_schema_id
    detail     String,            -- error text, capped at 4 KiB
    size       UInt64,            -- size of the original value in bytes
    sample     String,            -- the value's first bytes
    at         DateTime('UTC')    -- wall time it was dead-lettered
)
ENGINE = ReplacingMergeTree(at)
ORDER BY (topic, partition, offset)
SETTINGS index_granularity = 8192{{if .DedupWindow}}, non_replicated_deduplication_window = {{.DedupWindow}}{{end}};
