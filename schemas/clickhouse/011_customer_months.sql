-- One row per customer who ever ordered and per calendar month, from the first
-- month with data to the month of the latest event-time day (as_of_day):
-- the flags and figures retention_monthly and kpi_monthly count.
--
-- A customer is active at a point in time T if they ordered on a day d with
-- T - active_days <= d < T. active_days is rendered into this view when
-- winback migrates (Config.ActiveDays, default 90): views cannot take
-- parameters, so changing it re-creates the view (the migration's rendered
-- text changes) and schema_migrations records the value.
--
--   active_start  active at period_start
--   active_end    active at end_point: period_end, or as_of_day + 1 while
--                 the month is not over (is_complete = 0)
--   is_new        first order in [period_start, period_end)
--   bought        ordered in [period_start, period_end)
--   period_orders, period_revenue: orders and net spend in the month, the
--                 change of the cumulative totals over it
DROP TABLE IF EXISTS {{.DB}}.customer_months;

CREATE VIEW {{.DB}}.customer_months AS
SELECT
    customer_id,
    period_start,
    addMonths(period_start, 1) AS period_end,
    (SELECT max(day) FROM {{.DB}}.customer_daily FINAL) AS as_of_day,
    least(period_end, as_of_day + 1) AS end_point,
    end_point = period_end AS is_complete,
    toUInt32({{.ActiveDays}}) AS active_days,
    arrayExists(d -> d >= period_start - {{.ActiveDays}} AND d < period_start, order_days) AS active_start,
    arrayExists(d -> d >= end_point - {{.ActiveDays}} AND d < end_point, order_days) AS active_end,
    order_days[1] >= period_start AND order_days[1] < period_end AS is_new,
    arrayExists(d -> d >= period_start AND d < period_end, order_days) AS bought,
    toInt64(tupleElement(arrayFilter(t -> tupleElement(t, 1) < period_end, totals)[-1], 2))
        - toInt64(tupleElement(arrayFilter(t -> tupleElement(t, 1) < period_start, totals)[-1], 2)) AS period_orders,
    tupleElement(arrayFilter(t -> tupleElement(t, 1) < period_end, totals)[-1], 3)
        - tupleElement(arrayFilter(t -> tupleElement(t, 1) < period_start, totals)[-1], 3) AS period_revenue
FROM {{.DB}}.customer_history
ARRAY JOIN (
    SELECT arrayMap(i -> addMonths(first_period, i), range(toUInt64(dateDiff('month', first_period, last_period) + 1)))
    FROM
    (
        SELECT
            toStartOfMonth(least(min(day), ifNull(min(toDate(first_order_at)), min(day)))) AS first_period,
            toStartOfMonth(max(day)) AS last_period
        FROM {{.DB}}.customer_daily FINAL
    )
) AS period_start;
