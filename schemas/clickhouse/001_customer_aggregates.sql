-- One row per customer: the current figures (event.Aggregate). The latest
-- state version wins; read with FINAL (or argMax(x, version)).
CREATE TABLE IF NOT EXISTS {{.DB}}.customer_aggregates
(
    customer_id            String,
    version                UInt64,           -- the customer's state version; grows with every change
    as_of                  DateTime('UTC'),  -- event time of the latest change
    first_order_at         Nullable(DateTime('UTC')),
    last_order_at          Nullable(DateTime('UTC')),
    orders_total           UInt32,
    spend_total            Float64,          -- net of refunds and cancellations
    orders_7d              UInt32,
    orders_30d             UInt32,
    orders_90d             UInt32,
    orders_prev_90d        UInt32,           -- orders in the 90 days before the last 90
    spend_7d               Float64,
    spend_30d              Float64,
    spend_90d              Float64,
    spend_prev_90d         Float64,
    usual_interval_days    Float64,          -- 0 if unknown
    interval_spread_days   Float64,
    baseline_source        {{.String}},      -- personal | cohort
    emails_delivered_30d   UInt32,
    emails_opened_30d      UInt32,
    emails_clicked_30d     UInt32,
    emails_bounced_90d     UInt32,
    open_rate_30d          Float64,
    click_rate_30d         Float64,
    open_rate_baseline     Float64,
    click_rate_baseline    Float64,
    unsubscribed           UInt8,
    hard_bounced           UInt8,
    tickets_opened_30d     UInt32,
    tickets_opened_90d     UInt32,
    tickets_reopened_90d   UInt32,
    tickets_open           UInt32,
    complaints_90d         UInt32,
    last_csat              Nullable(UInt8),  -- 1-5
    last_nps               Nullable(UInt8),  -- 0-10
    value_tier             {{.String}},      -- HIGH | MEDIUM | LOW
    clv                    Float64,
    risk_score             Float64,          -- 0-1
    active_reasons         Array({{.String}}),
    last_trigger_id        String,
    last_trigger_reason    {{.String}},
    last_trigger_at        Nullable(DateTime('UTC')),
    updated_at             DateTime('UTC')   -- wall time of the write
)
ENGINE = ReplacingMergeTree(version)
ORDER BY customer_id
SETTINGS index_granularity = 8192{{if .DedupWindow}}, non_replicated_deduplication_window = {{.DedupWindow}}{{end}};
