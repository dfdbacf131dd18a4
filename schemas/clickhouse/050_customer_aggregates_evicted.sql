-- evicted: 1 on the last row of a customer whom the state TTL
-- (state.ttl_days) evicted from winback's state after that much event time
-- without a change; the figures are its last state. The sink deletes the
-- customer's earlier rows and writes this one with version 0, so a
-- customer seen again after its eviction starts anew (version 1) and its
-- new rows replace this one. Read evicted customers as history: the
-- current-state views (051, 060) leave them out. Rows written before this
-- migration read 0.
ALTER TABLE {{.DB}}.customer_aggregates ADD COLUMN evicted UInt8 DEFAULT 0;
