-- Customers by value tier and risk band, now: where to act first (the most
-- valuable customers most at risk are value_tier = 'HIGH', risk_band =
-- 'HIGH'). Risk bands: HIGH risk_score >= 0.7, MEDIUM >= 0.4, LOW below.
--
--   customers          customers in the cell
--   clv_sum            their summed CLV estimate
--   expected_clv_loss  sum of clv * risk_score: the value at risk
--   spend_90d_sum      their net spend in the last 90 days
--   spend_total_sum    their lifetime net spend
--   avg_risk_score     mean risk_score
DROP TABLE IF EXISTS {{.DB}}.value_risk_matrix;

CREATE VIEW {{.DB}}.value_risk_matrix AS
SELECT
    value_tier,
    risk_band,
    count() AS customers,
    sum(clv) AS clv_sum,
    sum(clv * risk_score) AS expected_clv_loss,
    sum(spend_90d) AS spend_90d_sum,
    sum(spend_total) AS spend_total_sum,
    avg(risk_score) AS avg_risk_score
FROM
(
    SELECT
        value_tier,
        multiIf(risk_score >= 0.7, 'HIGH', risk_score >= 0.4, 'MEDIUM', 'LOW') AS risk_band,
        clv,
        risk_score,
        spend_90d,
        spend_total
    FROM {{.DB}}.customer_aggregates FINAL
)
GROUP BY value_tier, risk_band
ORDER BY
    multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3),
    multiIf(risk_band = 'HIGH', 1, risk_band = 'MEDIUM', 2, 3);
