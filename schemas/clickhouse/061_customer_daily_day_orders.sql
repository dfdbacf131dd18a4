-- day_orders, day_spend: the net orders and net spend of the order events
-- on the UTC day of as_of (in customer_daily: the row's own day). A day's
-- row is written again when an event of that day comes after the
-- customer's later days (one input ran ahead of another, a late
-- producer), and the retention and KPI views (062) read each day's orders
-- from its own row, not as the change of cumulative totals between rows
-- that may have been written before the late event. Rows written before
-- this migration read 0: replay the inputs (a new consumer group) to fill
-- them in.
ALTER TABLE {{.DB}}.customer_aggregates ADD COLUMN day_orders Int32 DEFAULT 0 AFTER spend_total;
ALTER TABLE {{.DB}}.customer_aggregates ADD COLUMN day_spend Float64 DEFAULT 0 AFTER day_orders;
ALTER TABLE {{.DB}}.customer_daily ADD COLUMN day_orders Int32 DEFAULT 0 AFTER spend_total;
ALTER TABLE {{.DB}}.customer_daily ADD COLUMN day_spend Float64 DEFAULT 0 AFTER day_orders;

-- customer_daily_feed (006) again, copying the two columns.
DROP TABLE IF EXISTS {{.DB}}.customer_daily_feed;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.customer_daily_feed TO {{.DB}}.customer_daily AS
SELECT
    customer_id,
    toDate(as_of) AS day,
    version,
    as_of,
    first_order_at,
    last_order_at,
    orders_total,
    spend_total,
    day_orders,
    day_spend,
    orders_30d,
    orders_90d,
    spend_30d,
    spend_90d,
    usual_interval_days,
    value_tier,
    clv,
    risk_score,
    active_reasons,
    open_rate_30d,
    click_rate_30d,
    tickets_opened_90d,
    last_csat,
    last_nps,
    unsubscribed,
    hard_bounced,
    updated_at
FROM {{.DB}}.customer_aggregates;
