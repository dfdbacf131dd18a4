-- Customer retention per month, for BI: one row per month.
--
--   customers_start  S: active at the start of the month
--   customers_end    E: active at its end
--   customers_new    N: first order in the month
--   retained         active at start and at end
--   lost             active at start, not at end
--   reactivated      active at end, not at start, not new
--   crr_pct          (E - N) / S * 100, NULL when S = 0
--   churn_pct        lost / S * 100, NULL when S = 0
--
-- crr_pct + churn_pct = 100 + reactivated / S * 100: the classic CRR counts
-- customers who came back as retained. "Active" means an order within
-- active_days (see customer_months); is_complete = 0 marks the running month, whose
-- end is the latest event-time day so far.
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
    if(customers_start = 0, NULL, (customers_end - customers_new) / customers_start * 100) AS crr_pct,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct
FROM {{.DB}}.customer_months
GROUP BY period_start, period_end, is_complete, active_days
ORDER BY period_start;
