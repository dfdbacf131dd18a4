-- Purchase KPIs per week, for BI: one row per week.
--
--   buyers              customers who ordered in the week
--   new_customers       customers whose first order was in the week
--   orders, revenue     orders and net revenue (after refunds) in the week
--   aov                 average order value: revenue / orders
--   purchase_frequency  orders per buyer: orders / buyers
--   churn_pct           as in retention_weekly
--   clv_estimate        aov * purchase_frequency * expected lifetime, where
--                       the expected lifetime in weeks is 1 / churn rate
--                       (customers_start / lost); NULL without churn
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
    if(orders = 0, NULL, revenue / orders) AS aov,
    if(buyers = 0, NULL, orders / buyers) AS purchase_frequency,
    countIf(active_start) AS customers_start,
    countIf(active_start AND NOT active_end) AS lost,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct,
    if(lost = 0 OR orders = 0, NULL, (revenue / orders) * (orders / buyers) * (customers_start / lost)) AS clv_estimate
FROM {{.DB}}.customer_weeks
GROUP BY period_start, period_end, is_complete
ORDER BY period_start;
