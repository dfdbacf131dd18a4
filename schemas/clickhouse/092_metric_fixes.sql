-- Three BI figures corrected; the columns are those of 013–016 and 020.
--
-- retention_monthly, retention_weekly: crr_pct counts N as the new
-- customers still active at the period's end, (E - N) / S with N among E:
-- with active_days shorter than the period, a customer who first ordered
-- early in it and lapsed by its end was subtracted from E without being
-- in it, and CRR fell below its true value (below 0 at worst).
-- customers_new still counts every first order in the period. With
-- active_days at least the period's length (the default 90) nothing
-- changes, and always crr_pct + churn_pct = 100 + reactivated / S * 100.
--
-- kpi_monthly, kpi_weekly: aov and clv_estimate are NULL when the
-- period's net orders are 0 or fewer, and clv_estimate also without
-- buyers (a period of cancellations alone divided by 0 buyers: -inf).
-- clv_estimate = revenue / buyers * customers_start / lost, which is
-- aov * purchase_frequency * expected lifetime written without orders.
--
-- winback_funnel: TREATED triggers only. A CONTROL trigger (the holdout)
-- was never acted on, so its customer's return is no recovery of the
-- action; winback_incrementality sets the two arms side by side.
DROP TABLE IF EXISTS {{.DB}}.retention_monthly;

CREATE VIEW {{.DB}}.retention_monthly AS
SELECT
    period_start,
    period_end,
    is_complete,
    active_days,
    countIf(active_start) AS customers_start,
    countIf(active_end) AS customers_end,
    countIf(is_new) AS customers_new,
    countIf(active_start AND active_end) AS retained,
    countIf(active_start AND NOT active_end) AS lost,
    countIf(active_end AND NOT active_start AND NOT is_new) AS reactivated,
    if(customers_start = 0, NULL, countIf(active_end AND NOT is_new) / customers_start * 100) AS crr_pct,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct
FROM {{.DB}}.customer_months
GROUP BY period_start, period_end, is_complete, active_days
ORDER BY period_start;

DROP TABLE IF EXISTS {{.DB}}.retention_weekly;

CREATE VIEW {{.DB}}.retention_weekly AS
SELECT
    period_start,
    period_end,
    is_complete,
    active_days,
    countIf(active_start) AS customers_start,
    countIf(active_end) AS customers_end,
    countIf(is_new) AS customers_new,
    countIf(active_start AND active_end) AS retained,
    countIf(active_start AND NOT active_end) AS lost,
    countIf(active_end AND NOT active_start AND NOT is_new) AS reactivated,
    if(customers_start = 0, NULL, countIf(active_end AND NOT is_new) / customers_start * 100) AS crr_pct,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct
FROM {{.DB}}.customer_weeks
GROUP BY period_start, period_end, is_complete, active_days
ORDER BY period_start;

DROP TABLE IF EXISTS {{.DB}}.kpi_monthly;

CREATE VIEW {{.DB}}.kpi_monthly AS
SELECT
    period_start,
    period_end,
    is_complete,
    countIf(bought) AS buyers,
    countIf(is_new) AS new_customers,
    sum(period_orders) AS orders,
    sum(period_revenue) AS revenue,
    if(orders <= 0, NULL, revenue / orders) AS aov,
    if(buyers = 0, NULL, orders / buyers) AS purchase_frequency,
    countIf(active_start) AS customers_start,
    countIf(active_start AND NOT active_end) AS lost,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct,
    if(lost = 0 OR buyers = 0 OR orders <= 0, NULL, revenue / buyers * customers_start / lost) AS clv_estimate
FROM {{.DB}}.customer_months
GROUP BY period_start, period_end, is_complete
ORDER BY period_start;

DROP TABLE IF EXISTS {{.DB}}.kpi_weekly;

CREATE VIEW {{.DB}}.kpi_weekly AS
SELECT
    period_start,
    period_end,
    is_complete,
    countIf(bought) AS buyers,
    countIf(is_new) AS new_customers,
    sum(period_orders) AS orders,
    sum(period_revenue) AS revenue,
    if(orders <= 0, NULL, revenue / orders) AS aov,
    if(buyers = 0, NULL, orders / buyers) AS purchase_frequency,
    countIf(active_start) AS customers_start,
    countIf(active_start AND NOT active_end) AS lost,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct,
    if(lost = 0 OR buyers = 0 OR orders <= 0, NULL, revenue / buyers * customers_start / lost) AS clv_estimate
FROM {{.DB}}.customer_weeks
GROUP BY period_start, period_end, is_complete
ORDER BY period_start;

DROP TABLE IF EXISTS {{.DB}}.winback_funnel;

CREATE VIEW {{.DB}}.winback_funnel AS
SELECT
    reason,
    action,
    count() AS triggers,
    countIf(recovered = 1) AS recoveries,
    recoveries / triggers * 100 AS recovery_rate_pct,
    if(recoveries = 0, NULL,
       medianIf((toInt64(recovered_at) - toInt64(triggered_at)) / 86400, recovered = 1)) AS median_days_to_return,
    sumIf(return_revenue, recovered = 1) AS revenue_after_return
FROM
(
    SELECT
        trigger_id,
        toString(primary_reason) AS reason,
        toString(recommended_action) AS action,
        as_of AS triggered_at
    FROM {{.DB}}.winback_triggers FINAL
    WHERE kind = 'WINBACK' AND treatment = 'TREATED'
) AS w
ANY LEFT JOIN
(
    SELECT
        original_trigger_id AS trigger_id,
        toUInt8(1) AS recovered,
        as_of AS recovered_at,
        if(has(evidence.name, 'revenue'),
           evidence.value[indexOf(evidence.name, 'revenue')], 0) AS return_revenue
    FROM {{.DB}}.winback_triggers FINAL
    WHERE kind = 'RECOVERED'
) AS r USING trigger_id
GROUP BY reason, action
ORDER BY triggers DESC, reason, action;
