-- The current-state views leave out customers evicted by the state TTL
-- (050): they hold a customer's last state, years old, and would count as
-- in a tier for ever. customer_kpis keeps them: lifetime orders and
-- revenue happened. Same views as 021 and 022 otherwise; value_risk_matrix
-- and customers_at_risk (018, 019) leave them out from 060 on.

DROP TABLE IF EXISTS {{.DB}}.engagement_by_tier;

CREATE VIEW {{.DB}}.engagement_by_tier AS
SELECT
    value_tier,
    count() AS customers,
    sum(emails_delivered_30d) AS delivered_30d,
    sum(emails_opened_30d) AS opened_30d,
    sum(emails_clicked_30d) AS clicked_30d,
    if(delivered_30d = 0, NULL, opened_30d / delivered_30d) AS open_rate,
    if(delivered_30d = 0, NULL, clicked_30d / delivered_30d) AS click_rate,
    avg(open_rate_baseline) AS avg_open_rate_baseline,
    avg(click_rate_baseline) AS avg_click_rate_baseline,
    sum(emails_bounced_90d) AS bounced_90d,
    sum(unsubscribed) AS unsubscribed_customers,
    sum(hard_bounced) AS hard_bounced_customers
FROM {{.DB}}.customer_aggregates FINAL
WHERE evicted = 0
GROUP BY value_tier
ORDER BY multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3);

DROP TABLE IF EXISTS {{.DB}}.support_by_tier;

CREATE VIEW {{.DB}}.support_by_tier AS
SELECT
    value_tier,
    count() AS customers,
    sum(tickets_opened_90d) AS tickets_90d,
    sum(tickets_reopened_90d) AS reopened_90d,
    if(tickets_90d = 0, NULL, reopened_90d / tickets_90d) AS reopen_rate,
    sum(tickets_open) AS open_tickets,
    sum(complaints_90d) AS complaints_90d_sum,
    countIf(isNotNull(last_csat)) AS csat_responses,
    if(csat_responses = 0, NULL, sumIf(assumeNotNull(last_csat), isNotNull(last_csat)) / csat_responses) AS avg_csat,
    if(csat_responses = 0, NULL, countIf(isNotNull(last_csat) AND assumeNotNull(last_csat) >= 4) / csat_responses * 100) AS csat_satisfied_pct,
    if(csat_responses = 0, NULL, countIf(isNotNull(last_csat) AND assumeNotNull(last_csat) <= 2) / csat_responses * 100) AS csat_dissatisfied_pct,
    countIf(isNotNull(last_nps)) AS nps_responses,
    countIf(isNotNull(last_nps) AND assumeNotNull(last_nps) >= 9) AS promoters,
    countIf(isNotNull(last_nps) AND assumeNotNull(last_nps) <= 6) AS detractors,
    if(nps_responses = 0, NULL, (promoters - detractors) / nps_responses * 100) AS nps
FROM {{.DB}}.customer_aggregates FINAL
WHERE evicted = 0
GROUP BY value_tier
ORDER BY multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3);
