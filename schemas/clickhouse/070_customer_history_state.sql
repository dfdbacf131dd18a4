-- customer_history_state: every customer's daily figures, pre-aggregated
-- per customer, so that the retention and KPI views (071) read one row per
-- customer in key order instead of grouping all of customer_daily by
-- customer in memory (customer_history, 010/062, held every customer's
-- arrays at once: about 3.5 KiB per customer at 100k customers, far beyond
-- a node at 100M).
--
-- Its columns are parallel arrays (groupArray states, merged by
-- concatenation in the same order, so the i-th elements belong
-- together), one element per row inserted into customer_aggregates:
-- day, version, day_orders, day_spend, orders_total, spend_total, the UTC
-- day of first_order_at, and last_order_at as Unix seconds (toDate(0) and
-- 0 for NULL). The materialized view sees every inserted version (it
-- reads the inserted block, not the table), so it keeps them all, and the
-- readers (071's customer_days) keep the highest version of each day, as
-- customer_daily FINAL does; a version written again (a replay, a retried
-- insert) adds the same elements again, which the readers drop. So the
-- table grows with the rows inserted, like customer_daily before its
-- merges: about 40 bytes per row, compressed less. (A Tuple in an
-- AggregateFunction state, the obvious layout, crashed ClickHouse 18.16
-- on a GROUP BY over 100k keys.)
--
-- The view reads customer_aggregates, the table winback inserts into,
-- not customer_daily: ClickHouse 18.16 does not run the materialized views
-- of a table that another materialized view writes to. The INSERT below
-- fills it from customer_daily once, for the rows written before this
-- migration (a row inserted meanwhile lands twice, as the same tuple).
-- Erase deletes a customer's row here too.
CREATE TABLE IF NOT EXISTS {{.DB}}.customer_history_state
(
    customer_id     String,
    day             AggregateFunction(groupArray, Date),
    version         AggregateFunction(groupArray, UInt64),
    day_orders      AggregateFunction(groupArray, Int32),
    day_spend       AggregateFunction(groupArray, Float64),
    orders_total    AggregateFunction(groupArray, UInt32),
    spend_total     AggregateFunction(groupArray, Float64),
    first_order_day AggregateFunction(groupArray, Date),
    last_order_at   AggregateFunction(groupArray, UInt32)
)
ENGINE = AggregatingMergeTree
ORDER BY customer_id
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.customer_history_feed TO {{.DB}}.customer_history_state AS
SELECT
    customer_id,
    groupArrayState(toDate(as_of)) AS day,
    groupArrayState(version) AS version,
    groupArrayState(day_orders) AS day_orders,
    groupArrayState(day_spend) AS day_spend,
    groupArrayState(orders_total) AS orders_total,
    groupArrayState(spend_total) AS spend_total,
    groupArrayState(ifNull(toDate(first_order_at), toDate(0))) AS first_order_day,
    groupArrayState(ifNull(toUInt32(last_order_at), toUInt32(0))) AS last_order_at
FROM {{.DB}}.customer_aggregates
GROUP BY customer_id;

INSERT INTO {{.DB}}.customer_history_state (customer_id, day, version, day_orders, day_spend, orders_total,
    spend_total, first_order_day, last_order_at)
SELECT
    customer_id,
    groupArrayState(day),
    groupArrayState(version),
    groupArrayState(day_orders),
    groupArrayState(day_spend),
    groupArrayState(orders_total),
    groupArrayState(spend_total),
    groupArrayState(ifNull(toDate(first_order_at), toDate(0))),
    groupArrayState(ifNull(toUInt32(last_order_at), toUInt32(0)))
FROM {{.DB}}.customer_daily
GROUP BY customer_id
SETTINGS max_bytes_before_external_group_by = 1000000000;
