-- Data for scripts/bench-bi.sh, generated inside ClickHouse: {{CUSTOMERS}}
-- customers over two years (2024-01-01 .. 2025-12-31), about
-- {{DAILY}} / {{CUSTOMERS}} changed days each. Rendered by sed: {{DB}},
-- {{CUSTOMERS}}, {{DAILY}}, {{TRIGGERS}}, {{REST}} (DAILY - CUSTOMERS).
--
-- Shapes: value tiers 10 % HIGH, 30 % MEDIUM, 60 % LOW; risk scores
-- skewed low (the square of a uniform); an order on about a third of a
-- customer's changed days; every customer's first order on a day of their
-- own in the first year. customer_daily rows come in day order (as winback
-- writes them), so that each insert block touches one or two monthly
-- partitions.

-- The current row of every customer. The feed (006/061) copies each into
-- customer_daily under the day of its as_of: that is CUSTOMERS of the
-- DAILY daily rows.
INSERT INTO {{DB}}.customer_aggregates (customer_id, version, as_of, first_order_at, last_order_at,
    orders_total, spend_total, day_orders, day_spend, orders_7d, orders_30d, orders_90d, spend_30d, spend_90d,
    usual_interval_days, baseline_source, emails_delivered_30d, emails_opened_30d, emails_clicked_30d,
    emails_bounced_90d, open_rate_30d, click_rate_30d, open_rate_baseline, click_rate_baseline,
    unsubscribed, hard_bounced, tickets_opened_30d, tickets_opened_90d, tickets_reopened_90d, tickets_open,
    complaints_90d, last_csat, last_nps, value_tier, clv, risk_score, p_lapse, active_reasons,
    last_trigger_id, last_trigger_reason, last_trigger_at, updated_at)
SELECT
    concat('c', toString(n)) AS customer_id,
    toUInt64(1000000000) + n AS version,
    toDateTime('2025-06-01 00:00:00') + cityHash64(n, 1) % (214 * 86400) AS as_of,
    toDateTime('2024-01-01 00:00:00') + cityHash64(n) % (365 * 86400) AS first_order_at,
    as_of - cityHash64(n, 2) % (200 * 86400) AS last_order_at,
    toUInt32(1 + cityHash64(n, 3) % 20) AS orders_total,
    orders_total * (20 + cityHash64(n, 4) % 80) AS spend_total,
    toInt32(cityHash64(n, 5) % 3 = 0) AS day_orders,
    day_orders * 45.0 AS day_spend,
    toUInt32(cityHash64(n, 6) % 2) AS orders_7d,
    toUInt32(cityHash64(n, 7) % 3) AS orders_30d,
    toUInt32(cityHash64(n, 8) % 5) AS orders_90d,
    orders_30d * 40.0 AS spend_30d,
    orders_90d * 40.0 AS spend_90d,
    10 + cityHash64(n, 9) % 50 AS usual_interval_days,
    if(orders_total >= 3, 'personal', 'cohort') AS baseline_source,
    toUInt32(cityHash64(n, 10) % 12) AS emails_delivered_30d,
    toUInt32(emails_delivered_30d * (cityHash64(n, 11) % 100) / 200) AS emails_opened_30d,
    toUInt32(emails_opened_30d / 3) AS emails_clicked_30d,
    toUInt32(cityHash64(n, 12) % 50 = 0) AS emails_bounced_90d,
    if(emails_delivered_30d = 0, 0, emails_opened_30d / emails_delivered_30d) AS open_rate_30d,
    if(emails_delivered_30d = 0, 0, emails_clicked_30d / emails_delivered_30d) AS click_rate_30d,
    0.25 AS open_rate_baseline,
    0.05 AS click_rate_baseline,
    toUInt8(cityHash64(n, 13) % 30 = 0) AS unsubscribed,
    toUInt8(cityHash64(n, 14) % 100 = 0) AS hard_bounced,
    toUInt32(cityHash64(n, 15) % 20 = 0) AS tickets_opened_30d,
    toUInt32(cityHash64(n, 16) % 10 = 0) AS tickets_opened_90d,
    toUInt32(cityHash64(n, 17) % 50 = 0) AS tickets_reopened_90d,
    toUInt32(cityHash64(n, 18) % 40 = 0) AS tickets_open,
    toUInt32(cityHash64(n, 19) % 200 = 0) AS complaints_90d,
    if(cityHash64(n, 20) % 5 = 0, toNullable(toUInt8(1 + cityHash64(n, 21) % 5)), NULL) AS last_csat,
    if(cityHash64(n, 22) % 8 = 0, toNullable(toUInt8(cityHash64(n, 23) % 11)), NULL) AS last_nps,
    multiIf(cityHash64(n, 24) % 10 = 0, 'HIGH', cityHash64(n, 24) % 10 < 4, 'MEDIUM', 'LOW') AS value_tier,
    spend_total * (1 + cityHash64(n, 25) % 3) AS clv,
    pow((cityHash64(n, 26) % 10000) / 10000, 2) AS risk_score,
    risk_score AS p_lapse,
    if(risk_score >= 0.4, ['purchase_lapse'], emptyArrayString()) AS active_reasons,
    if(risk_score >= 0.7, concat('t', toString(n)), '') AS last_trigger_id,
    if(risk_score >= 0.7, 'purchase_lapse', '') AS last_trigger_reason,
    if(risk_score >= 0.7, toNullable(as_of), NULL) AS last_trigger_at,
    toDateTime('2026-01-01 00:00:00') AS updated_at
FROM (SELECT number AS n FROM system.numbers LIMIT {{CUSTOMERS}})
SETTINGS max_insert_block_size = 2097152;

-- The other daily rows, in day order: row i is on day i * 730 / rows, of
-- a customer picked by hash. A customer's first order is on a day of its
-- own in 2024; rows before it have no order yet. They go through
-- customer_aggregates, as winback writes them: its materialized views
-- fill customer_daily and customer_history_state. Their versions are
-- below the current rows', which win in customer_aggregates.
INSERT INTO {{DB}}.customer_aggregates (customer_id, version, as_of, first_order_at, last_order_at,
    orders_total, spend_total, day_orders, day_spend, orders_30d, orders_90d, spend_30d, spend_90d,
    usual_interval_days, value_tier, clv, risk_score, active_reasons, open_rate_30d, click_rate_30d,
    tickets_opened_90d, last_csat, last_nps, unsubscribed, hard_bounced, updated_at)
SELECT
    concat('c', toString(c)) AS customer_id,
    toUInt64(i) AS version,
    toDateTime(day) + cityHash64(i) % 86400 AS as_of,
    if(as_of >= first_at, toNullable(first_at), NULL) AS first_order_at,
    if(as_of < first_at, NULL, toNullable(if(day_orders > 0, as_of, greatest(first_at, as_of - cityHash64(i, 2) % (60 * 86400))))) AS last_order_at,
    toUInt32(if(as_of < first_at, 0, 1 + intDiv(toUInt32(as_of) - toUInt32(first_at), 40 * 86400))) AS orders_total,
    orders_total * 45.0 AS spend_total,
    toInt32(as_of >= first_at AND cityHash64(i, 3) % 3 = 0) AS day_orders,
    day_orders * (20 + cityHash64(i, 4) % 80) AS day_spend,
    toUInt32(day_orders) AS orders_30d,
    toUInt32(day_orders + cityHash64(i, 5) % 2) AS orders_90d,
    orders_30d * 45.0 AS spend_30d,
    orders_90d * 45.0 AS spend_90d,
    30.0 AS usual_interval_days,
    multiIf(cityHash64(c, 24) % 10 = 0, 'HIGH', cityHash64(c, 24) % 10 < 4, 'MEDIUM', 'LOW') AS value_tier,
    spend_total * 2 AS clv,
    pow((cityHash64(i, 6) % 10000) / 10000, 2) AS risk_score,
    emptyArrayString() AS active_reasons,
    0.2 AS open_rate_30d,
    0.04 AS click_rate_30d,
    toUInt32(0) AS tickets_opened_90d,
    CAST(NULL AS Nullable(UInt8)) AS last_csat,
    CAST(NULL AS Nullable(UInt8)) AS last_nps,
    toUInt8(0) AS unsubscribed,
    toUInt8(0) AS hard_bounced,
    toDateTime('2026-01-01 00:00:00') AS updated_at
FROM
(
    SELECT number AS i, cityHash64(number) % {{CUSTOMERS}} AS c, toUInt64({{REST}}) AS rows,
        toDateTime('2024-01-01 00:00:00') + cityHash64(c) % (365 * 86400) AS first_at,
        toDate('2024-01-01') + toUInt32(intDiv(i * 730, rows)) AS day
    FROM system.numbers LIMIT {{REST}}
)
SETTINGS max_insert_block_size = 2097152;

-- Triggers: four WINBACK for every RECOVERED one, which points at the
-- WINBACK trigger before it; half the customers at high risk.
INSERT INTO {{DB}}.winback_triggers (trigger_id, customer_id, kind, reasons, primary_reason, risk_score,
    value_tier, priority, recommended_action, evidence.name, evidence.value, original_trigger_id, as_of,
    emitted_at, treatment)
SELECT
    concat('t', toString(i)) AS trigger_id,
    concat('c', toString(cityHash64(i) % {{CUSTOMERS}})) AS customer_id,
    if(i % 5 = 4, 'RECOVERED', 'WINBACK') AS kind,
    [reason] AS reasons,
    arrayElement(['purchase_lapse', 'spend_drop', 'engagement_drop', 'support_risk'], 1 + cityHash64(i, 1) % 4) AS reason,
    0.5 + (cityHash64(i, 2) % 500) / 1000 AS risk_score,
    multiIf(cityHash64(i, 3) % 10 = 0, 'HIGH', cityHash64(i, 3) % 10 < 4, 'MEDIUM', 'LOW') AS value_tier,
    toInt32(1 + cityHash64(i, 4) % 100) AS priority,
    arrayElement(['email', 'discount', 'call'], 1 + cityHash64(i, 5) % 3) AS recommended_action,
    ['revenue'] AS `evidence.name`,
    [toFloat64(20 + cityHash64(i, 6) % 100)] AS `evidence.value`,
    if(kind = 'RECOVERED', concat('t', toString(i - 1)), '') AS original_trigger_id,
    toDateTime('2024-01-01 00:00:00') + intDiv(i * (730 * 86400), {{TRIGGERS}}) AS as_of,
    as_of + 1 AS emitted_at,
    if(cityHash64(i, 7) % 10 = 0, 'CONTROL', 'TREATED') AS treatment
FROM (SELECT number AS i FROM system.numbers LIMIT {{TRIGGERS}})
SETTINGS max_insert_block_size = 2097152;
