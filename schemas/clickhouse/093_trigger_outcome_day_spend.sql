-- trigger_outcome_state (090) again, with each day's own net spend
-- (day_spend) in place of the running spend_total, and
-- winback_trigger_outcomes on it: revenue_90d is now the sum of the days'
-- own spend from the day after the trigger's to day + 90, not the
-- difference of the running totals of two days' rows. A late event (one
-- that arrives after its customer's later days) writes its day's row again
-- with the customer's current totals, and only its day_orders and
-- day_spend are that day's own; the difference then read the later days'
-- spend into the trigger's day (revenue_90d 0 for a customer whose late
-- e-mail of the trigger's day arrived after the return order). The other
-- columns and the view's other outputs are 090's.
--
-- The table is built again: its columns are parallel arrays, so a column
-- added to the rows already merged could not line up with theirs. The
-- feeds go first, then the table; the new feeds exist before the backfill
-- reads customer_history_state (which its own feed keeps filling) and
-- winback_triggers, so a row inserted while this runs lands once or twice
-- (the same element, which the view drops), never not at all.
DROP TABLE IF EXISTS {{.DB}}.trigger_outcome_days_feed;

DROP TABLE IF EXISTS {{.DB}}.trigger_outcome_triggers_feed;

DROP TABLE IF EXISTS {{.DB}}.trigger_outcome_state;

CREATE TABLE IF NOT EXISTS {{.DB}}.trigger_outcome_state
(
    customer_id        String,
    day                AggregateFunction(groupArray, Date),
    version            AggregateFunction(groupArray, UInt64),
    day_spend          AggregateFunction(groupArray, Float64),
    last_order_at      AggregateFunction(groupArray, UInt32),
    trigger_id         AggregateFunction(groupArray, String),
    trigger_emitted_at AggregateFunction(groupArray, UInt32),
    trigger_as_of      AggregateFunction(groupArray, UInt32),
    trigger_reason     AggregateFunction(groupArray, String),
    trigger_action     AggregateFunction(groupArray, String),
    trigger_tier       AggregateFunction(groupArray, String),
    trigger_treatment  AggregateFunction(groupArray, String)
)
ENGINE = AggregatingMergeTree
ORDER BY customer_id
SETTINGS index_granularity = 1024;

-- The days, from customer_aggregates (the table winback inserts into, as
-- customer_history_feed reads it).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.trigger_outcome_days_feed TO {{.DB}}.trigger_outcome_state AS
SELECT
    customer_id,
    groupArrayState(toDate(as_of)) AS day,
    groupArrayState(version) AS version,
    groupArrayState(day_spend) AS day_spend,
    groupArrayState(ifNull(toUInt32(last_order_at), toUInt32(0))) AS last_order_at,
    arrayReduce('groupArrayState', emptyArrayString()) AS trigger_id,
    arrayReduce('groupArrayState', emptyArrayUInt32()) AS trigger_emitted_at,
    arrayReduce('groupArrayState', emptyArrayUInt32()) AS trigger_as_of,
    arrayReduce('groupArrayState', emptyArrayString()) AS trigger_reason,
    arrayReduce('groupArrayState', emptyArrayString()) AS trigger_action,
    arrayReduce('groupArrayState', emptyArrayString()) AS trigger_tier,
    arrayReduce('groupArrayState', emptyArrayString()) AS trigger_treatment
FROM {{.DB}}.customer_aggregates
GROUP BY customer_id;

-- The WINBACK triggers, from winback_triggers.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.trigger_outcome_triggers_feed TO {{.DB}}.trigger_outcome_state AS
SELECT
    customer_id,
    arrayReduce('groupArrayState', emptyArrayDate()) AS day,
    arrayReduce('groupArrayState', emptyArrayUInt64()) AS version,
    arrayReduce('groupArrayState', emptyArrayFloat64()) AS day_spend,
    arrayReduce('groupArrayState', emptyArrayUInt32()) AS last_order_at,
    groupArrayState(trigger_id) AS trigger_id,
    groupArrayState(toUInt32(emitted_at)) AS trigger_emitted_at,
    groupArrayState(toUInt32(as_of)) AS trigger_as_of,
    groupArrayState(toString(primary_reason)) AS trigger_reason,
    groupArrayState(toString(recommended_action)) AS trigger_action,
    groupArrayState(toString(value_tier)) AS trigger_tier,
    groupArrayState(treatment) AS trigger_treatment
FROM {{.DB}}.winback_triggers
WHERE kind = 'WINBACK'
GROUP BY customer_id;

-- The rows written before this migration, once: the days as
-- customer_history_state holds them (its states, copied row by row; no
-- GROUP BY, so memory does not grow with the customers), and the WINBACK
-- triggers, one state per trigger row. A row inserted meanwhile lands
-- twice, as the same element, which the view drops.
INSERT INTO {{.DB}}.trigger_outcome_state (customer_id, day, version, day_spend, last_order_at)
SELECT customer_id, day, version, day_spend, last_order_at
FROM {{.DB}}.customer_history_state;

INSERT INTO {{.DB}}.trigger_outcome_state (customer_id, trigger_id, trigger_emitted_at, trigger_as_of,
    trigger_reason, trigger_action, trigger_tier, trigger_treatment)
SELECT
    customer_id,
    arrayReduce('groupArrayState', [trigger_id]),
    arrayReduce('groupArrayState', [toUInt32(emitted_at)]),
    arrayReduce('groupArrayState', [toUInt32(as_of)]),
    arrayReduce('groupArrayState', [toString(primary_reason)]),
    arrayReduce('groupArrayState', [toString(recommended_action)]),
    arrayReduce('groupArrayState', [toString(value_tier)]),
    arrayReduce('groupArrayState', [treatment])
FROM {{.DB}}.winback_triggers
WHERE kind = 'WINBACK';

-- winback_trigger_outcomes as in 090, but for revenue_90d:
--   revenue_90d  the sum of the day_spend of the window's days after the
--                trigger's day (0 without one)
DROP TABLE IF EXISTS {{.DB}}.winback_trigger_outcomes;

CREATE VIEW {{.DB}}.winback_trigger_outcomes AS
SELECT
    o_trigger_id AS trigger_id,
    o_customer AS customer_id,
    o_month AS month,
    o_reason AS reason,
    o_action AS action,
    o_tier AS tier,
    o_treatment AS treatment,
    o_triggered_at AS triggered_at,
    o_returned_at AS returned_at,
    o_recovered_30d AS recovered_30d,
    o_recovered_60d AS recovered_60d,
    o_recovered_90d AS recovered_90d,
    o_revenue_90d AS revenue_90d,
    o_observed_days AS observed_days
FROM
(
    SELECT
        tupleElement(tr, 1) AS o_trigger_id,
        o_customer,
        tupleElement(tr, 3) AS t_at,
        toDateTime(t_at, 'UTC') AS o_triggered_at,
        toDate(o_triggered_at) AS t_day,
        toStartOfMonth(t_day) AS o_month,
        tupleElement(tr, 4) AS o_reason,
        tupleElement(tr, 5) AS o_action,
        tupleElement(tr, 6) AS o_tier,
        tupleElement(tr, 7) AS o_treatment,
        if(empty(ds), [(toDate(0), toFloat64(0), toUInt32(0))], ds) AS known,
        arrayFilter(x -> tupleElement(x, 1) <= t_day + 90, known) AS window,
        arrayReduce('min', arrayFilter(a -> a > t_at, arrayMap(x -> tupleElement(x, 3), window))) AS first_return,
        if(first_return = 0, NULL, toDateTime(first_return, 'UTC')) AS o_returned_at,
        toUInt8(first_return != 0 AND first_return <= t_at + 30 * 86400) AS o_recovered_30d,
        toUInt8(first_return != 0 AND first_return <= t_at + 60 * 86400) AS o_recovered_60d,
        toUInt8(first_return != 0 AND first_return <= t_at + 90 * 86400) AS o_recovered_90d,
        arraySum(arrayMap(x -> if(tupleElement(x, 1) > t_day, tupleElement(x, 2), toFloat64(0)), window)) AS o_revenue_90d,
        toInt32((SELECT max(day) FROM {{.DB}}.customer_daily) - t_day) AS o_observed_days
    FROM
    (
        SELECT
            customer_id AS o_customer,
            arraySort(arrayMap((d, v, s, l) -> (d, v, s, l),
                finalizeAggregation(day), finalizeAggregation(version),
                finalizeAggregation(day_spend), finalizeAggregation(last_order_at))) AS all_days,
            arrayFilter((t, i) -> i = length(all_days) OR tupleElement(all_days[i + 1], 1) != tupleElement(t, 1),
                all_days, arrayEnumerate(all_days)) AS latest,
            arrayMap(x -> (tupleElement(x, 1), tupleElement(x, 3), tupleElement(x, 4)), latest) AS ds,
            arraySort(arrayMap((id, e, a, r, ac, ti, tr) -> (id, e, a, r, ac, ti, tr),
                finalizeAggregation(trigger_id), finalizeAggregation(trigger_emitted_at),
                finalizeAggregation(trigger_as_of), finalizeAggregation(trigger_reason),
                finalizeAggregation(trigger_action), finalizeAggregation(trigger_tier),
                finalizeAggregation(trigger_treatment))) AS all_triggers,
            arrayFilter((t, i) -> i = length(all_triggers) OR tupleElement(all_triggers[i + 1], 1) != tupleElement(t, 1),
                all_triggers, arrayEnumerate(all_triggers)) AS triggers
        FROM {{.DB}}.trigger_outcome_state FINAL
        SETTINGS max_block_size = 4096
    )
    ARRAY JOIN triggers AS tr
    -- t_at named outside a lambda too (18.16 drops a column that only
    -- lambdas read; see 072)
    WHERE notEmpty(window) AND t_at >= 0
);
