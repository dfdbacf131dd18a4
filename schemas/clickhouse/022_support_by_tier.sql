-- Support health by value tier, now.
--
--   tickets_90d, reopened_90d  tickets opened / reopened in the last 90 days
--   reopen_rate                reopened_90d / tickets_90d
--   open_tickets, complaints_90d
--   csat_responses             customers with a CSAT score (their latest)
--   avg_csat                   mean latest CSAT (1-5)
--   csat_satisfied_pct         share scoring 4-5, * 100
--   csat_dissatisfied_pct      share scoring 1-2, * 100
--   nps_responses, promoters (9-10), detractors (0-6)
--   nps                        (promoters - detractors) / responses * 100
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
GROUP BY value_tier
ORDER BY multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3);
