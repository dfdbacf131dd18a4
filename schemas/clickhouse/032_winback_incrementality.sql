-- Incremental recovery: what the win-back actions add over customers who
-- come back on their own. One row per month (of the trigger's as_of),
-- primary reason, recommended action and value tier, comparing the WINBACK
-- triggers acted on (treatment TREATED) with the control group (CONTROL:
-- the holdout, lapse.lifecycle.holdout_share, recorded and left alone).
-- Which trigger is in the control group is decided by a hash of customer
-- and episode, independently of everything else about it, so the two
-- groups differ only by the action: the difference of their recovery rates
-- is the action's effect. docs/signals.md explains how to read it.
--
--   treated, control               triggers in each arm
--   recovered_Nd_treated/_control  of those, customers who ordered within N
--                                  days (30, 60, 90) after the trigger
--                                  (winback_trigger_outcomes)
--   rate_Nd_treated/_control       recovered / triggers (NULL for an empty arm)
--   incremental_rate_Nd            rate treated − rate control: the share of
--                                  triggers whose customer came back because
--                                  of the action (NULL without both arms)
--   incremental_rate_Nd_low/_high  its 95 % confidence interval: the normal
--                                  approximation of a difference of two
--                                  independent proportions, ± 1.96 ×
--                                  sqrt(pt(1−pt)/nt + pc(1−pc)/nc); rough
--                                  below ~10 recoveries or non-recoveries in
--                                  an arm (and 0 wide when both rates are 0
--                                  or 1)
--   revenue_90d_treated/_control   mean net spend per trigger in the 90 days
--                                  after it, per arm
--   incremental_revenue            (mean treated − mean control) × treated:
--                                  the spend the actions added over the
--                                  treated triggers
--   incremental_revenue_low/_high  its 95 % interval: ± 1.96 × treated ×
--                                  sqrt(s²t/nt + s²c/nc) (Welch, normal
--                                  approximation; needs 2 triggers per arm)
--   observed_days_min              days the youngest trigger has been
--                                  observed: below N the N-day figures of
--                                  the row are not final yet
DROP TABLE IF EXISTS {{.DB}}.winback_incrementality;

CREATE VIEW {{.DB}}.winback_incrementality AS
SELECT
    month, reason, action, tier,
    treated, control,
    recovered_30d_treated, recovered_30d_control,
    recovered_60d_treated, recovered_60d_control,
    recovered_90d_treated, recovered_90d_control,
    rate_30d_treated, rate_30d_control,
    rate_60d_treated, rate_60d_control,
    rate_90d_treated, rate_90d_control,
    both_arms * (rate_30d_treated - rate_30d_control) AS incremental_rate_30d,
    both_arms * (incremental_rate_30d - 1.96 * sqrt(pt30 * (1 - pt30) / nt + pc30 * (1 - pc30) / nc)) AS incremental_rate_30d_low,
    both_arms * (incremental_rate_30d + 1.96 * sqrt(pt30 * (1 - pt30) / nt + pc30 * (1 - pc30) / nc)) AS incremental_rate_30d_high,
    both_arms * (rate_60d_treated - rate_60d_control) AS incremental_rate_60d,
    both_arms * (incremental_rate_60d - 1.96 * sqrt(pt60 * (1 - pt60) / nt + pc60 * (1 - pc60) / nc)) AS incremental_rate_60d_low,
    both_arms * (incremental_rate_60d + 1.96 * sqrt(pt60 * (1 - pt60) / nt + pc60 * (1 - pc60) / nc)) AS incremental_rate_60d_high,
    both_arms * (rate_90d_treated - rate_90d_control) AS incremental_rate_90d,
    both_arms * (incremental_rate_90d - 1.96 * sqrt(pt90 * (1 - pt90) / nt + pc90 * (1 - pc90) / nc)) AS incremental_rate_90d_low,
    both_arms * (incremental_rate_90d + 1.96 * sqrt(pt90 * (1 - pt90) / nt + pc90 * (1 - pc90) / nc)) AS incremental_rate_90d_high,
    revenue_90d_treated, revenue_90d_control,
    both_arms * (revenue_90d_treated - revenue_90d_control) * treated AS incremental_revenue,
    welch * (incremental_revenue - 1.96 * treated * sqrt(vt / nt + vc / nc)) AS incremental_revenue_low,
    welch * (incremental_revenue + 1.96 * treated * sqrt(vt / nt + vc / nc)) AS incremental_revenue_high,
    observed_days_min
FROM
(
    SELECT
        month, reason, action, tier,
        countIf(treatment = 'TREATED') AS treated,
        countIf(treatment = 'CONTROL') AS control,
        countIf(treatment = 'TREATED' AND recovered_30d = 1) AS recovered_30d_treated,
        countIf(treatment = 'CONTROL' AND recovered_30d = 1) AS recovered_30d_control,
        countIf(treatment = 'TREATED' AND recovered_60d = 1) AS recovered_60d_treated,
        countIf(treatment = 'CONTROL' AND recovered_60d = 1) AS recovered_60d_control,
        countIf(treatment = 'TREATED' AND recovered_90d = 1) AS recovered_90d_treated,
        countIf(treatment = 'CONTROL' AND recovered_90d = 1) AS recovered_90d_control,
        -- nt, nc are never 0 (so no division fails); both_arms turns the
        -- comparisons to NULL where an arm is empty.
        greatest(treated, 1) AS nt,
        greatest(control, 1) AS nc,
        if(treated > 0 AND control > 0, 1, NULL) AS both_arms,
        if(treated > 1 AND control > 1, 1, NULL) AS welch,
        recovered_30d_treated / nt AS pt30,
        recovered_30d_control / nc AS pc30,
        recovered_60d_treated / nt AS pt60,
        recovered_60d_control / nc AS pc60,
        recovered_90d_treated / nt AS pt90,
        recovered_90d_control / nc AS pc90,
        if(treated = 0, NULL, pt30) AS rate_30d_treated,
        if(control = 0, NULL, pc30) AS rate_30d_control,
        if(treated = 0, NULL, pt60) AS rate_60d_treated,
        if(control = 0, NULL, pc60) AS rate_60d_control,
        if(treated = 0, NULL, pt90) AS rate_90d_treated,
        if(control = 0, NULL, pc90) AS rate_90d_control,
        if(treated = 0, NULL, sumIf(revenue_90d, treatment = 'TREATED') / nt) AS revenue_90d_treated,
        if(control = 0, NULL, sumIf(revenue_90d, treatment = 'CONTROL') / nc) AS revenue_90d_control,
        -- sample variances, 0 for a single trigger (welch is NULL then)
        (sumIf(revenue_90d * revenue_90d, treatment = 'TREATED') - nt * pow(sumIf(revenue_90d, treatment = 'TREATED') / nt, 2)) / greatest(treated - 1, 1) AS vt,
        (sumIf(revenue_90d * revenue_90d, treatment = 'CONTROL') - nc * pow(sumIf(revenue_90d, treatment = 'CONTROL') / nc, 2)) / greatest(control - 1, 1) AS vc,
        min(observed_days) AS observed_days_min
    FROM {{.DB}}.winback_trigger_outcomes
    GROUP BY month, reason, action, tier
)
ORDER BY month, reason, action, tier;

-- The same comparison over all time, one row per primary reason: the
-- summary to read first (and the one with the most triggers per row, so
-- the narrowest intervals). Columns as in winback_incrementality, without
-- month, action and tier.
DROP TABLE IF EXISTS {{.DB}}.winback_incrementality_by_reason;

CREATE VIEW {{.DB}}.winback_incrementality_by_reason AS
SELECT
    reason,
    treated, control,
    recovered_30d_treated, recovered_30d_control,
    recovered_60d_treated, recovered_60d_control,
    recovered_90d_treated, recovered_90d_control,
    rate_30d_treated, rate_30d_control,
    rate_60d_treated, rate_60d_control,
    rate_90d_treated, rate_90d_control,
    both_arms * (rate_30d_treated - rate_30d_control) AS incremental_rate_30d,
    both_arms * (incremental_rate_30d - 1.96 * sqrt(pt30 * (1 - pt30) / nt + pc30 * (1 - pc30) / nc)) AS incremental_rate_30d_low,
    both_arms * (incremental_rate_30d + 1.96 * sqrt(pt30 * (1 - pt30) / nt + pc30 * (1 - pc30) / nc)) AS incremental_rate_30d_high,
    both_arms * (rate_60d_treated - rate_60d_control) AS incremental_rate_60d,
    both_arms * (incremental_rate_60d - 1.96 * sqrt(pt60 * (1 - pt60) / nt + pc60 * (1 - pc60) / nc)) AS incremental_rate_60d_low,
    both_arms * (incremental_rate_60d + 1.96 * sqrt(pt60 * (1 - pt60) / nt + pc60 * (1 - pc60) / nc)) AS incremental_rate_60d_high,
    both_arms * (rate_90d_treated - rate_90d_control) AS incremental_rate_90d,
    both_arms * (incremental_rate_90d - 1.96 * sqrt(pt90 * (1 - pt90) / nt + pc90 * (1 - pc90) / nc)) AS incremental_rate_90d_low,
    both_arms * (incremental_rate_90d + 1.96 * sqrt(pt90 * (1 - pt90) / nt + pc90 * (1 - pc90) / nc)) AS incremental_rate_90d_high,
    revenue_90d_treated, revenue_90d_control,
    both_arms * (revenue_90d_treated - revenue_90d_control) * treated AS incremental_revenue,
    welch * (incremental_revenue - 1.96 * treated * sqrt(vt / nt + vc / nc)) AS incremental_revenue_low,
    welch * (incremental_revenue + 1.96 * treated * sqrt(vt / nt + vc / nc)) AS incremental_revenue_high,
    observed_days_min
FROM
(
    SELECT
        reason,
        countIf(treatment = 'TREATED') AS treated,
        countIf(treatment = 'CONTROL') AS control,
        countIf(treatment = 'TREATED' AND recovered_30d = 1) AS recovered_30d_treated,
        countIf(treatment = 'CONTROL' AND recovered_30d = 1) AS recovered_30d_control,
        countIf(treatment = 'TREATED' AND recovered_60d = 1) AS recovered_60d_treated,
        countIf(treatment = 'CONTROL' AND recovered_60d = 1) AS recovered_60d_control,
        countIf(treatment = 'TREATED' AND recovered_90d = 1) AS recovered_90d_treated,
        countIf(treatment = 'CONTROL' AND recovered_90d = 1) AS recovered_90d_control,
        greatest(treated, 1) AS nt,
        greatest(control, 1) AS nc,
        if(treated > 0 AND control > 0, 1, NULL) AS both_arms,
        if(treated > 1 AND control > 1, 1, NULL) AS welch,
        recovered_30d_treated / nt AS pt30,
        recovered_30d_control / nc AS pc30,
        recovered_60d_treated / nt AS pt60,
        recovered_60d_control / nc AS pc60,
        recovered_90d_treated / nt AS pt90,
        recovered_90d_control / nc AS pc90,
        if(treated = 0, NULL, pt30) AS rate_30d_treated,
        if(control = 0, NULL, pc30) AS rate_30d_control,
        if(treated = 0, NULL, pt60) AS rate_60d_treated,
        if(control = 0, NULL, pc60) AS rate_60d_control,
        if(treated = 0, NULL, pt90) AS rate_90d_treated,
        if(control = 0, NULL, pc90) AS rate_90d_control,
        if(treated = 0, NULL, sumIf(revenue_90d, treatment = 'TREATED') / nt) AS revenue_90d_treated,
        if(control = 0, NULL, sumIf(revenue_90d, treatment = 'CONTROL') / nc) AS revenue_90d_control,
        (sumIf(revenue_90d * revenue_90d, treatment = 'TREATED') - nt * pow(sumIf(revenue_90d, treatment = 'TREATED') / nt, 2)) / greatest(treated - 1, 1) AS vt,
        (sumIf(revenue_90d * revenue_90d, treatment = 'CONTROL') - nc * pow(sumIf(revenue_90d, treatment = 'CONTROL') / nc, 2)) / greatest(control - 1, 1) AS vc,
        min(observed_days) AS observed_days_min
    FROM {{.DB}}.winback_trigger_outcomes
    GROUP BY reason
)
ORDER BY reason;
