-- customer_history, customer_months and customer_weeks (010-012) again:
-- a period's orders and revenue are the sums of its days' own figures
-- (day_orders, day_spend, migration 061) rather than the change of
-- cumulative totals between rows, so that a day whose orders came after
-- the customer's later days counts right (winback writes that day's row
-- again; the rows of the days between keep their older totals).

-- Per customer who ever ordered: the sorted days on which they ordered, and
-- the net orders and net spend of every day on which they changed
-- (day_orders, day_spend of that day's row). The base of the retention
-- and KPI views.
--
-- Order days are the UTC days of first_order_at and last_order_at over all
-- daily snapshots, and the days whose own orders net above 0: the row of a
-- day on which the customer ordered carries that order in last_order_at
-- or in day_orders, also when the order came after the customer's later
-- days (winback writes that day's row again). totals, the cumulative
-- (orders_total, spend_total) at the end of every such day, is what
-- 011 and 012 read: they run again when active_days changes, before this
-- migration does.
DROP TABLE IF EXISTS {{.DB}}.customer_history;

CREATE VIEW {{.DB}}.customer_history AS
SELECT
    customer_id,
    arraySort(arrayFilter(d -> d != toDate(0), groupUniqArrayArray([
        ifNull(toDate(first_order_at), toDate(0)),
        ifNull(toDate(last_order_at), toDate(0)),
        if(day_orders > 0, day, toDate(0))]))) AS order_days,
    arraySort(groupArray((day, day_orders, day_spend))) AS day_figures,
    arraySort(groupArray((day, orders_total, spend_total))) AS totals
FROM {{.DB}}.customer_daily FINAL
GROUP BY customer_id
HAVING notEmpty(order_days);

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
--                 sums of the day_orders and day_spend of its days
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
    arraySum(arrayMap(t -> if(tupleElement(t, 1) >= period_start AND tupleElement(t, 1) < period_end, toInt64(tupleElement(t, 2)), toInt64(0)), day_figures)) AS period_orders,
    arraySum(arrayMap(t -> if(tupleElement(t, 1) >= period_start AND tupleElement(t, 1) < period_end, tupleElement(t, 3), toFloat64(0)), day_figures)) AS period_revenue
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

-- One row per customer who ever ordered and per ISO week (Monday to
-- Sunday), from the first week with data to the week of the latest
-- event-time day (as_of_day): the flags and figures retention_weekly and
-- kpi_weekly count.
--
-- A customer is active at a point in time T if they ordered on a day d with
-- T - active_days <= d < T. active_days is rendered into this view when
-- winback migrates (Config.ActiveDays, default 90): views cannot take
-- parameters, so changing it re-creates the view (the migration's rendered
-- text changes) and schema_migrations records the value.
--
--   active_start  active at period_start
--   active_end    active at end_point: period_end, or as_of_day + 1 while
--                 the week is not over (is_complete = 0)
--   is_new        first order in [period_start, period_end)
--   bought        ordered in [period_start, period_end)
--   period_orders, period_revenue: orders and net spend in the week, the
--                 sums of the day_orders and day_spend of its days
DROP TABLE IF EXISTS {{.DB}}.customer_weeks;

CREATE VIEW {{.DB}}.customer_weeks AS
SELECT
    customer_id,
    period_start,
    period_start + 7 AS period_end,
    (SELECT max(day) FROM {{.DB}}.customer_daily FINAL) AS as_of_day,
    least(period_end, as_of_day + 1) AS end_point,
    end_point = period_end AS is_complete,
    toUInt32({{.ActiveDays}}) AS active_days,
    arrayExists(d -> d >= period_start - {{.ActiveDays}} AND d < period_start, order_days) AS active_start,
    arrayExists(d -> d >= end_point - {{.ActiveDays}} AND d < end_point, order_days) AS active_end,
    order_days[1] >= period_start AND order_days[1] < period_end AS is_new,
    arrayExists(d -> d >= period_start AND d < period_end, order_days) AS bought,
    arraySum(arrayMap(t -> if(tupleElement(t, 1) >= period_start AND tupleElement(t, 1) < period_end, toInt64(tupleElement(t, 2)), toInt64(0)), day_figures)) AS period_orders,
    arraySum(arrayMap(t -> if(tupleElement(t, 1) >= period_start AND tupleElement(t, 1) < period_end, tupleElement(t, 3), toFloat64(0)), day_figures)) AS period_revenue
FROM {{.DB}}.customer_history
ARRAY JOIN (
    SELECT arrayMap(i -> first_period + 7 * i, range(toUInt64(intDiv(last_period - first_period, 7) + 1)))
    FROM
    (
        SELECT
            toMonday(least(min(day), ifNull(min(toDate(first_order_at)), min(day)))) AS first_period,
            toMonday(max(day)) AS last_period
        FROM {{.DB}}.customer_daily FINAL
    )
) AS period_start;
