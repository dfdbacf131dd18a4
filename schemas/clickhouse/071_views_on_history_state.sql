-- The retention and KPI views (customer_history, customer_months,
-- customer_weeks; 062) again, on customer_history_state (070): no scan of
-- customer_daily FINAL and no GROUP BY over all customers. Each reads the
-- pre-aggregated state in key order, one row per customer (FINAL on an
-- AggregatingMergeTree merges the parts' states as it streams), and works
-- on that customer's arrays alone, so memory does not grow with the
-- number of customers. Outputs are those of 062.

-- Per customer (every customer with a daily row): latest, the row of each
-- day as customer_daily FINAL has it, sorted by day: of the elements of
-- customer_history_state (070), zipped into tuples (day, version,
-- day_orders, day_spend, orders_total, spend_total, first order day,
-- last_order_at in Unix seconds), the one with the highest version of
-- each day (ties, the same version written with other figures, take the
-- largest tuple; a replay writes the same figures). day_min, day_max: the
-- customer's first and last day; first_min: the earliest first order
-- day over the days (day_min without one). Memory goes with the block:
-- max_block_size customers' arrays at a time (4096: about 25 MiB at ten
-- days a customer; 65536, the default, took 16 times that).
DROP TABLE IF EXISTS {{.DB}}.customer_days;

CREATE VIEW {{.DB}}.customer_days AS
SELECT
    customer_id,
    arraySort(arrayMap((d, v, o, s, ot, st, f, l) -> (d, v, o, s, ot, st, f, l),
        finalizeAggregation(day), finalizeAggregation(version), finalizeAggregation(day_orders),
        finalizeAggregation(day_spend), finalizeAggregation(orders_total), finalizeAggregation(spend_total),
        finalizeAggregation(first_order_day), finalizeAggregation(last_order_at))) AS all_versions,
    arrayFilter((t, i) -> i = length(all_versions) OR tupleElement(all_versions[i + 1], 1) != tupleElement(t, 1),
        all_versions, arrayEnumerate(all_versions)) AS latest,
    tupleElement(latest[1], 1) AS day_min,
    tupleElement(latest[-1], 1) AS day_max,
    arrayFilter(d -> d != toDate(0), arrayMap(t -> tupleElement(t, 7), latest)) AS first_days,
    if(empty(first_days), day_min, arrayReduce('min', first_days)) AS first_min
FROM {{.DB}}.customer_history_state FINAL
SETTINGS max_block_size = 4096;

-- Per customer who ever ordered: the sorted days on which they ordered
-- (the days of first_order_at and last_order_at over the days' rows, and
-- the days whose own orders net above 0), the net orders and net spend of
-- every day on which they changed (day_figures), and the cumulative
-- (orders_total, spend_total) at the end of each (totals). As in 062.
DROP TABLE IF EXISTS {{.DB}}.customer_history;

CREATE VIEW {{.DB}}.customer_history AS
SELECT
    customer_id,
    arraySort(arrayFilter(d -> d != toDate(0), arrayDistinct(arrayConcat(
        arrayMap(t -> tupleElement(t, 7), latest),
        arrayMap(t -> if(tupleElement(t, 8) = 0, toDate(0), toDate(toDateTime(tupleElement(t, 8), 'UTC'))), latest),
        arrayMap(t -> if(tupleElement(t, 3) > 0, tupleElement(t, 1), toDate(0)), latest))))) AS order_days,
    arrayMap(t -> (tupleElement(t, 1), tupleElement(t, 3), tupleElement(t, 4)), latest) AS day_figures,
    arrayMap(t -> (tupleElement(t, 1), tupleElement(t, 5), tupleElement(t, 6)), latest) AS totals
FROM {{.DB}}.customer_days
WHERE notEmpty(order_days);

DROP TABLE IF EXISTS {{.DB}}.customer_months;

CREATE VIEW {{.DB}}.customer_months AS
SELECT
    customer_id,
    period_start,
    addMonths(period_start, 1) AS period_end,
    (SELECT max(day) FROM {{.DB}}.customer_daily) AS as_of_day,
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
            toStartOfMonth(least(min(day_min), min(first_min))) AS first_period,
            toStartOfMonth(max(day_max)) AS last_period
        FROM {{.DB}}.customer_days
    )
) AS period_start;

DROP TABLE IF EXISTS {{.DB}}.customer_weeks;

CREATE VIEW {{.DB}}.customer_weeks AS
SELECT
    customer_id,
    period_start,
    period_start + 7 AS period_end,
    (SELECT max(day) FROM {{.DB}}.customer_daily) AS as_of_day,
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
            toMonday(least(min(day_min), min(first_min))) AS first_period,
            toMonday(max(day_max)) AS last_period
        FROM {{.DB}}.customer_days
    )
) AS period_start;
