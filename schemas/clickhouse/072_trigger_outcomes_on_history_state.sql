-- winback_trigger_outcomes (031) again, on customer_days (071): the same
-- rows, without joining every row of customer_daily FINAL (at 100M daily
-- rows, a hash table of all of them). Each WINBACK trigger is joined with
-- its customer's days alone, as arrays of (day, spend_total,
-- last_order_at), only for the customers that have a WINBACK trigger; the
-- figures are read from the arrays:
--   window       the customer's days up to the trigger's day + 90 (a
--                trigger whose customer has daily rows, none of them in
--                the window, has no row, as in 031; one whose customer
--                has none reads no order and no spend)
--   returned_at  the earliest last_order_at after as_of in the window
--   revenue_90d  spend_total on the window's last day less that on the
--                last day up to the trigger's day (0 without one)
-- Column meanings are 031's; winback_incrementality reads this view.
DROP TABLE IF EXISTS {{.DB}}.winback_trigger_outcomes;

CREATE VIEW {{.DB}}.winback_trigger_outcomes AS
SELECT
    trigger_id,
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
        trigger_id,
        customer_id AS o_customer,
        toStartOfMonth(toDate(as_of)) AS o_month,
        toString(primary_reason) AS o_reason,
        toString(recommended_action) AS o_action,
        toString(value_tier) AS o_tier,
        treatment AS o_treatment,
        as_of AS o_triggered_at,
        if(empty(ds), [(toDate(0), toFloat64(0), toUInt32(0))], ds) AS known,
        arrayFilter(x -> tupleElement(x, 1) <= toDate(as_of) + 90, known) AS window,
        arrayReduce('min', arrayFilter(a -> a > toUInt32(as_of), arrayMap(x -> tupleElement(x, 3), window))) AS first_return,
        if(first_return = 0, NULL, toDateTime(first_return, 'UTC')) AS o_returned_at,
        toUInt8(first_return != 0 AND first_return <= toUInt32(as_of) + 30 * 86400) AS o_recovered_30d,
        toUInt8(first_return != 0 AND first_return <= toUInt32(as_of) + 60 * 86400) AS o_recovered_60d,
        toUInt8(first_return != 0 AND first_return <= toUInt32(as_of) + 90 * 86400) AS o_recovered_90d,
        arrayFilter(x -> tupleElement(x, 1) <= toDate(as_of), window) AS before,
        if(empty(window), toFloat64(0), tupleElement(window[-1], 2))
            - if(empty(before), toFloat64(0), tupleElement(before[-1], 2)) AS o_revenue_90d,
        toInt32((SELECT max(day) FROM {{.DB}}.customer_daily) - toDate(as_of)) AS o_observed_days
    FROM
    (
        SELECT trigger_id, customer_id, as_of, primary_reason, recommended_action, value_tier, treatment
        FROM {{.DB}}.winback_triggers FINAL
        WHERE kind = 'WINBACK'
    ) AS t
    ANY LEFT JOIN
    (
        SELECT
            customer_id,
            arrayMap(x -> (tupleElement(x, 1), tupleElement(x, 6), tupleElement(x, 8)), latest) AS ds
        FROM {{.DB}}.customer_days
        WHERE customer_id IN (SELECT customer_id FROM {{.DB}}.winback_triggers WHERE kind = 'WINBACK')
    ) AS d USING customer_id
    -- as_of named outside a lambda too: 18.16 does not count a column
    -- that only lambdas read as needed, so a caller reading some columns
    -- of this view (SELECT treatment, count() ...) lost it
    WHERE notEmpty(window) AND as_of >= toDateTime(0)
);
