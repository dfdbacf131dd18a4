-- customer_history_state: every customer's daily figures, pre-aggregated
-- per customer, so that the retention and KPI views (071) read one row per
-- customer in key order instead of grouping all of customer_daily by
-- customer in memory (customer_history, 010/062, held every customer's
-- arrays at once: about 3.5 KiB per customer at 100k customers, far beyond
-- a node at 100M).
--
-- days holds one tuple per (day, version) a customer's row of that day
-- ever had, with the figures the views read:
--   (day, version, day_orders, day_spend, orders_total, spend_total,
--    the UTC day of first_order_at, last_order_at as Unix seconds)
-- (toDate(0) and 0 for NULL). The materialized view sees every inserted
-- version (it reads the inserted block, not the table), so it keeps them
-- all, and the readers (071's customer_days) keep the highest version of
-- each day, as customer_daily FINAL does; a version written again (a
-- replay, a retried insert) is the same tuple, which groupUniqArray keeps
-- once. The table grows with the versions a day is rewritten in, not
-- with replays.
--
-- The view reads customer_aggregates, the table winback inserts into,
-- not customer_daily: ClickHouse 18.16 does not run the materialized views
-- of a table that another materialized view writes to. The INSERT below
-- fills it from customer_daily once, for the rows written before this
-- migration (a row inserted meanwhile lands twice, as the same tuple).
-- Erase deletes a customer's row here too.
CREATE TABLE IF NOT EXISTS {{.DB}}.customer_history_state
(
    customer_id  String,
    days         AggregateFunction(groupUniqArray, Tuple(Date, UInt64, Int32, Float64, UInt32, Float64, Date, UInt32))
)
ENGINE = AggregatingMergeTree
ORDER BY customer_id
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.customer_history_feed TO {{.DB}}.customer_history_state AS
SELECT
    customer_id,
    groupUniqArrayState((toDate(as_of), version, day_orders, day_spend, orders_total, spend_total,
        ifNull(toDate(first_order_at), toDate(0)), ifNull(toUInt32(last_order_at), toUInt32(0)))) AS days
FROM {{.DB}}.customer_aggregates
GROUP BY customer_id;

INSERT INTO {{.DB}}.customer_history_state (customer_id, days)
SELECT
    customer_id,
    groupUniqArrayState((day, version, day_orders, day_spend, orders_total, spend_total,
        ifNull(toDate(first_order_at), toDate(0)), ifNull(toUInt32(last_order_at), toUInt32(0)))) AS days
FROM {{.DB}}.customer_daily
GROUP BY customer_id
SETTINGS max_bytes_before_external_group_by = 1000000000;
