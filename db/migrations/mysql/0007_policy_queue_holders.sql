-- Incremental policy evaluation (doc/design.md §2.4): a membership change queues the holders it
-- affects, one row per app concerned and holder (a user or a device), instead of the whole app,
-- so that the evaluation reads and plans only those holders. A row with app_id and neither
-- holder is the whole app, as before; a row with no app is everything.
ALTER TABLE policy_queue ADD COLUMN user_id BIGINT NULL, ADD COLUMN device_id BIGINT NULL;
