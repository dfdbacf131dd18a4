-- Every trigger winback emitted, WINBACK and RECOVERED, one row per
-- trigger_id. A replay writes the same trigger_id again; FINAL keeps the one
-- with the latest emitted_at, the attempt whose transaction committed.
-- evidence is the trigger's evidence map as two parallel arrays
-- (Nested): evidence.value[indexOf(evidence.name, 'days_since_last_order')].
CREATE TABLE IF NOT EXISTS {{.DB}}.winback_triggers
(
    trigger_id           String,
    customer_id          String,
    kind                 {{.String}},      -- WINBACK | RECOVERED
    reasons              Array({{.String}}),
    primary_reason       {{.String}},
    risk_score           Float64,
    value_tier           {{.String}},
    priority             Int32,            -- 1-100
    recommended_action   {{.String}},
    evidence             Nested(name String, value Float64),
    original_trigger_id  String,           -- RECOVERED: the WINBACK trigger recovered from; '' otherwise
    as_of                DateTime('UTC'),  -- event time at which it became due
    emitted_at           DateTime('UTC')   -- wall time at which it was emitted
)
ENGINE = ReplacingMergeTree(emitted_at)
ORDER BY trigger_id
SETTINGS index_granularity = 8192{{if .DedupWindow}}, non_replicated_deduplication_window = {{.DedupWindow}}{{end}};
