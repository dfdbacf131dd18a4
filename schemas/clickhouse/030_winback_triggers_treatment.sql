-- treatment: the trigger's experiment arm, TREATED (act on it) or CONTROL
-- (the holdout group: recorded, no action taken); a RECOVERED trigger
-- carries its original trigger's. Rows written before this migration read
-- TREATED, as triggers without the field do on the topic. Plain String (not
-- the version-dependent type) so that the rendered SQL never changes.
ALTER TABLE {{.DB}}.winback_triggers ADD COLUMN treatment String DEFAULT 'TREATED' AFTER emitted_at;
