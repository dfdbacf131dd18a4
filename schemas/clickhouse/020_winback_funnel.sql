-- The win-back funnel per primary reason and recommended action: one row
-- per (reason, action) of WINBACK triggers.
--
--   triggers                   WINBACK triggers
--   recoveries                 of those, how many have a RECOVERED trigger
--                              (original_trigger_id = their trigger_id)
--   recovery_rate_pct          recoveries / triggers * 100
--   median_days_to_return      median of (RECOVERED.as_of - WINBACK.as_of)
--                              in days; NULL without recoveries
--   revenue_after_return       sum of the RECOVERED triggers' evidence
--                              'revenue', the value of the return order
--                              (0 where absent)
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
    WHERE kind = 'WINBACK'
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
