-- p_lapse: the probability that the customer places no order within
-- lapse.purchase_lapse.horizon_days (default 90) as of as_of, from the
-- MBG/NBD purchase model (docs/signals.md); 0 for a customer without a
-- placed order. Rows written before this migration read 0.
ALTER TABLE {{.DB}}.customer_aggregates ADD COLUMN p_lapse Float64 DEFAULT 0 AFTER risk_score;
