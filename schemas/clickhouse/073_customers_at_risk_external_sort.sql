-- customers_at_risk (060) again, sorting on disk beyond 1 GB: at 10M
-- customers it lists a third of them (risk_score >= {{.RiskMedium}}), and
-- sorting those rows in memory alone took more than 2 GiB. Same rows, same
-- order.

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
    customer_id
SETTINGS max_bytes_before_external_sort = 1000000000;
