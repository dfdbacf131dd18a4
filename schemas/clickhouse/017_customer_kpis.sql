-- Lifetime purchase KPIs over all customers, now: one row.
--
--   customers           customers winback knows (any event)
--   buyers              customers with at least one order
--   repeat_buyers       customers with at least two orders
--   repeat_rate_pct     repeat_buyers / buyers * 100
--   orders, revenue     lifetime orders and net revenue
--   aov                 revenue / orders
--   purchase_frequency  orders / buyers
--   revenue_per_buyer   revenue / buyers (= aov * purchase_frequency)
--   avg_clv             mean of winback's CLV estimate over buyers
DROP TABLE IF EXISTS {{.DB}}.customer_kpis;

CREATE VIEW {{.DB}}.customer_kpis AS
SELECT
    count() AS customers,
    countIf(orders_total >= 1) AS buyers,
    countIf(orders_total >= 2) AS repeat_buyers,
    if(buyers = 0, NULL, repeat_buyers / buyers * 100) AS repeat_rate_pct,
    sum(orders_total) AS orders,
    sum(spend_total) AS revenue,
    if(orders = 0, NULL, revenue / orders) AS aov,
    if(buyers = 0, NULL, orders / buyers) AS purchase_frequency,
    if(buyers = 0, NULL, revenue / buyers) AS revenue_per_buyer,
    if(buyers = 0, NULL, sumIf(clv, orders_total >= 1) / buyers) AS avg_clv
FROM {{.DB}}.customer_aggregates FINAL;
