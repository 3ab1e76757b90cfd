-- licenseEvents follows changes by time: assignments and sync runs by when they last changed.
CREATE INDEX ix_license_assignments_updated ON license_assignments (updated_at);
CREATE INDEX ix_sync_runs_started ON sync_runs (started_at);
CREATE INDEX ix_sync_runs_finished ON sync_runs (finished_at);
