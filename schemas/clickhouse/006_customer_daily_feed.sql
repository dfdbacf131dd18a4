-- customer_daily is filled by ClickHouse itself: this materialized view
-- copies every row inserted into customer_aggregates into customer_daily,
-- under the UTC day of its as_of. A batch holds a row per changed customer
-- and event-time day (the latest version of each), and the latest
-- version of a customer-day wins there as it does in customer_aggregates.
-- A materialized view sees the inserted block, not the table, so it reads
-- without FINAL. Where inserts carry insert_deduplication_token (22.2+),
-- winback also sets deduplicate_blocks_in_dependent_materialized_views, so
-- that a retry of an insert whose block was stored here but failed in the
-- view still reaches customer_daily, which deduplicates it by itself.
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
