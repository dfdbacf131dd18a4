-- Per customer who ever ordered: the sorted days on which they ordered, and
-- their cumulative (orders_total, spend_total) at the end of every day on
-- which they changed. The base of the retention and KPI views.
--
-- Order days are the UTC days of first_order_at and last_order_at over all
-- daily snapshots: the snapshot of a day on which the customer ordered
-- carries that order in last_order_at. (An order that arrives so late that
-- the customer has a newer order already does not move last_order_at, so
-- its day is not an order day; its amount still counts in revenue.)
DROP TABLE IF EXISTS {{.DB}}.customer_history;

CREATE VIEW {{.DB}}.customer_history AS
SELECT
    customer_id,
    arraySort(arrayFilter(d -> d != toDate(0), groupUniqArrayArray([
        ifNull(toDate(first_order_at), toDate(0)),
        ifNull(toDate(last_order_at), toDate(0))]))) AS order_days,
    arraySort(groupArray((day, orders_total, spend_total))) AS totals
FROM {{.DB}}.customer_daily FINAL
GROUP BY customer_id
HAVING notEmpty(order_days);
