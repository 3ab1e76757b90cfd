-- Full passes mark what they saw at Apple, so that what they did not see can be found without
-- holding an account's assignments in memory.
ALTER TABLE license_assignments ADD COLUMN seen_run_id BIGINT NULL;
ALTER TABLE license_pools ADD COLUMN seen_run_id BIGINT NULL;
ALTER TABLE apple_users ADD COLUMN seen_run_id BIGINT NULL;
-- A removal asked to reclaim every license first waits here until the reclaims are done.
ALTER TABLE accounts ADD COLUMN removal_requested_at DATETIME(6) NULL;
-- Apps offered at no cost (R5: the error for an empty pool says more cost nothing).
ALTER TABLE apps ADD COLUMN is_free TINYINT(1) NOT NULL DEFAULT 0;
