-- value_risk_matrix and customers_at_risk (018, 019) again, with the risk
-- bands rendered from the engine's bounds (event.RiskHighMin,
-- event.RiskMediumMin), so that views and engine band alike. Like 051,
-- they leave out customers evicted by the state TTL.

-- Customers by value tier and risk band, now: where to act first (the most
-- valuable customers most at risk are value_tier = 'HIGH', risk_band =
-- 'HIGH'). Risk bands: HIGH risk_score >= {{.RiskHigh}}, MEDIUM >= {{.RiskMedium}}, LOW below.
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
        multiIf(risk_score >= {{.RiskHigh}}, 'HIGH', risk_score >= {{.RiskMedium}}, 'MEDIUM', 'LOW') AS risk_band,
        clv,
        risk_score,
        spend_90d,
        spend_total
    FROM {{.DB}}.customer_aggregates FINAL
    WHERE evicted = 0
)
GROUP BY value_tier, risk_band
ORDER BY
    multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3),
    multiIf(risk_band = 'HIGH', 1, risk_band = 'MEDIUM', 2, 3);

-- The work list: every customer with risk_score >= {{.RiskMedium}}, most valuable
-- first (value tier HIGH, MEDIUM, LOW), then most at risk, then highest
-- CLV. days_since_last_order counts from the latest event time winback has
-- seen (not the wall clock), so replayed history reads right.
DROP TABLE IF EXISTS {{.DB}}.customers_at_risk;

CREATE VIEW {{.DB}}.customers_at_risk AS
SELECT
    customer_id,
    value_tier,
    multiIf(risk_score >= {{.RiskHigh}}, 'HIGH', risk_score >= {{.RiskMedium}}, 'MEDIUM', 'LOW') AS risk_band,
    risk_score,
    clv,
    clv * risk_score AS expected_clv_loss,
    spend_90d,
    spend_total,
    orders_total,
    last_order_at,
    dateDiff('day', last_order_at, (SELECT max(as_of) FROM {{.DB}}.customer_aggregates FINAL)) AS days_since_last_order,
    active_reasons,
    last_trigger_id,
    last_trigger_reason,
    last_trigger_at,
    unsubscribed,
    hard_bounced
FROM {{.DB}}.customer_aggregates FINAL
WHERE evicted = 0 AND risk_score >= {{.RiskMedium}}
ORDER BY
    multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3),
    risk_score DESC,
    clv DESC,
    customer_id;
