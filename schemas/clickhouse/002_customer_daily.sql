-- A snapshot per customer per event-time day on which the customer changed:
-- the state at the end of that day (the latest version of the day). The
-- retention, cohort and KPI views are built from it.
CREATE TABLE IF NOT EXISTS {{.DB}}.customer_daily
(
    customer_id          String,
    day                  Date,             -- UTC day of as_of
    version              UInt64,
    as_of                DateTime('UTC'),
    first_order_at       Nullable(DateTime('UTC')),
    last_order_at        Nullable(DateTime('UTC')),
    orders_total         UInt32,
    spend_total          Float64,
    orders_30d           UInt32,
    orders_90d           UInt32,
    spend_30d            Float64,
    spend_90d            Float64,
    usual_interval_days  Float64,
    value_tier           {{.String}},
    clv                  Float64,
    risk_score           Float64,
    active_reasons       Array({{.String}}),
    open_rate_30d        Float64,
    click_rate_30d       Float64,
    tickets_opened_90d   UInt32,
    last_csat            Nullable(UInt8),
    last_nps             Nullable(UInt8),
    unsubscribed         UInt8,
    hard_bounced         UInt8,
    updated_at           DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (customer_id, day)
SETTINGS index_granularity = 8192{{if .DedupWindow}}, non_replicated_deduplication_window = {{.DedupWindow}}{{end}};
