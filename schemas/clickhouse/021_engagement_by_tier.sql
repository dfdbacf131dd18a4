-- E-mail engagement by value tier, now (last 30 days per customer).
--
--   open_rate, click_rate     opened / delivered, clicked / delivered over
--                             the tier (NULL if nothing was delivered)
--   avg_open_rate_baseline    mean of the customers' own open-rate baselines
--   unsubscribed_customers, hard_bounced_customers: e-mail lost
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
GROUP BY value_tier
ORDER BY multiIf(value_tier = 'HIGH', 1, value_tier = 'MEDIUM', 2, 3);
