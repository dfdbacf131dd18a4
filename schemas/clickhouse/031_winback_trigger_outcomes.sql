-- What became of each WINBACK trigger: one row per trigger_id, the base
-- of winback_incrementality (and of any other slice: group it with the
-- same formulas).
--
--   month, reason, action, tier, treatment
--                      the trigger's month (of as_of, UTC), primary reason,
--                      recommended action, value tier and arm
--   triggered_at       as_of of the trigger
--   returned_at        the customer's first order after as_of, within 90
--                      days of its day (customer_daily), or NULL
--   recovered_30d/60d/90d
--                      1 if returned_at is within 30/60/90 days of as_of
--   revenue_90d        net spend in the 90 days after the trigger's day:
--                      spend_total at the end of day + 90 less at the end of
--                      the trigger's day (0 without an order)
--   observed_days      days from the trigger's day to the latest event-time
--                      day in customer_daily: below 90, the 90-day figures
--                      are not final yet
--
-- Recovery is read from customer_daily (the first order after the trigger)
-- rather than from RECOVERED triggers, which only the reasons in
-- lapse.lifecycle.recover_on get: so every reason is measured the same
-- way. For those reasons returned_at is the RECOVERED trigger's as_of.
DROP TABLE IF EXISTS {{.DB}}.winback_trigger_outcomes;

CREATE VIEW {{.DB}}.winback_trigger_outcomes AS
SELECT
    trigger_id, o_customer AS customer_id, month, reason, action, tier, treatment, triggered_at, returned_at,
    recovered_30d, recovered_60d, recovered_90d, revenue_90d, observed_days
FROM
(
SELECT
    trigger_id,
    any(t_customer) AS o_customer, -- not customer_id: 18.16 takes that for the join key
    any(t_month) AS month,
    any(t_reason) AS reason,
    any(t_action) AS action,
    any(t_tier) AS tier,
    any(t_treatment) AS treatment,
    toDateTime(any(t_at), 'UTC') AS triggered_at,
    minIf(order_at, order_at > t_at) AS first_return,
    if(first_return = 0, NULL, toDateTime(first_return, 'UTC')) AS returned_at,
    toUInt8(first_return != 0 AND first_return <= any(t_at) + 30 * 86400) AS recovered_30d,
    toUInt8(first_return != 0 AND first_return <= any(t_at) + 60 * 86400) AS recovered_60d,
    toUInt8(first_return != 0 AND first_return <= any(t_at) + 90 * 86400) AS recovered_90d,
    argMax(spend, day) - argMaxIf(spend, day, day <= t_day) AS revenue_90d,
    toInt32((SELECT max(day) FROM {{.DB}}.customer_daily FINAL) - any(t_day)) AS observed_days
FROM
(
    SELECT
        trigger_id,
        customer_id,
        customer_id AS t_customer,
        toStartOfMonth(toDate(as_of)) AS t_month,
        toString(primary_reason) AS t_reason,
        toString(recommended_action) AS t_action,
        toString(value_tier) AS t_tier,
        treatment AS t_treatment,
        toUInt32(as_of) AS t_at,
        toDate(as_of) AS t_day
    FROM {{.DB}}.winback_triggers FINAL
    WHERE kind = 'WINBACK'
) AS t
ALL LEFT JOIN
(
    SELECT
        customer_id,
        day,
        ifNull(toUInt32(last_order_at), 0) AS order_at,
        spend_total AS spend
    FROM {{.DB}}.customer_daily FINAL
) AS d USING customer_id
WHERE day <= t_day + 90
GROUP BY trigger_id
);
