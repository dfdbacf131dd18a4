-- Purchase KPIs per month, for BI: one row per month.
--
--   buyers              customers who ordered in the month
--   new_customers       customers whose first order was in the month
--   orders, revenue     orders and net revenue (after refunds) in the month
--   aov                 average order value: revenue / orders
--   purchase_frequency  orders per buyer: orders / buyers
--   churn_pct           as in retention_monthly
--   clv_estimate        aov * purchase_frequency * expected lifetime, where
--                       the expected lifetime in months is 1 / churn rate
--                       (customers_start / lost); NULL without churn
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
    if(orders = 0, NULL, revenue / orders) AS aov,
    if(buyers = 0, NULL, orders / buyers) AS purchase_frequency,
    countIf(active_start) AS customers_start,
    countIf(active_start AND NOT active_end) AS lost,
    if(customers_start = 0, NULL, lost / customers_start * 100) AS churn_pct,
    if(lost = 0 OR orders = 0, NULL, (revenue / orders) * (orders / buyers) * (customers_start / lost)) AS clv_estimate
FROM {{.DB}}.customer_months
GROUP BY period_start, period_end, is_complete
ORDER BY period_start;
