-- Orchard's initial schema for SQLite. Forward-only: never edit a migration that has
-- shipped; add a new numbered file instead. Mirrors mysql/0001_initial.sql.

CREATE TABLE accounts (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  org_name TEXT NOT NULL DEFAULT '',
  location_name TEXT NOT NULL DEFAULT '',
  country_code TEXT NOT NULL DEFAULT '',
  default_platform TEXT NOT NULL DEFAULT '',
  website_url TEXT NOT NULL DEFAULT '',
  apple_uid TEXT NOT NULL DEFAULT '',
  location_key TEXT NULL,
  token_ciphertext BLOB NOT NULL,
  token_fingerprint TEXT NOT NULL DEFAULT '',
  token_expires_at DATETIME NOT NULL,
  notification_secret_ciphertext BLOB NULL,
  notifications_enabled BOOLEAN NOT NULL DEFAULT 0,
  health TEXT NOT NULL,
  health_changed_at DATETIME NOT NULL,
  claimed_by_id TEXT NULL,
  claimed_by_name TEXT NULL,
  last_error TEXT NULL,
  throttled_until DATETIME NULL,
  throttle_reason TEXT NULL,
  assets_version_id TEXT NOT NULL DEFAULT '',
  assignments_version_id TEXT NOT NULL DEFAULT '',
  users_version_id TEXT NOT NULL DEFAULT '',
  sync_status TEXT NOT NULL DEFAULT 'NEVER',
  last_synced_at DATETIME NULL,
  last_full_sync_at DATETIME NULL,
  next_sync_at DATETIME NULL,
  next_full_sync_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  removed_at DATETIME NULL
);
CREATE UNIQUE INDEX ux_accounts_location_key ON accounts (location_key);
CREATE INDEX ix_accounts_next_sync ON accounts (next_sync_at);
CREATE INDEX ix_accounts_name ON accounts (name);

CREATE TABLE apps (
  id INTEGER PRIMARY KEY,
  adam_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  bundle_id TEXT NOT NULL DEFAULT '',
  icon_url TEXT NOT NULL DEFAULT '',
  platforms TEXT NOT NULL DEFAULT '',
  is_b2b BOOLEAN NOT NULL DEFAULT 0,
  minimum_os_version TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  metadata_refreshed_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX ux_apps_adam_id ON apps (adam_id);
CREATE INDEX ix_apps_name ON apps (name);
CREATE INDEX ix_apps_bundle_id ON apps (bundle_id);

CREATE TABLE app_countries (
  app_id INTEGER NOT NULL,
  country_code TEXT NOT NULL,
  available BOOLEAN NOT NULL,
  checked_at DATETIME NOT NULL,
  PRIMARY KEY (app_id, country_code),
  CONSTRAINT fk_app_countries_app FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE CASCADE
);

CREATE TABLE license_pools (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  app_id INTEGER NOT NULL,
  adam_id TEXT NOT NULL,
  pricing_param TEXT NOT NULL,
  total_count INTEGER NOT NULL DEFAULT 0,
  unlimited BOOLEAN NOT NULL DEFAULT 0,
  apple_assigned_count INTEGER NOT NULL DEFAULT 0,
  apple_available_count INTEGER NOT NULL DEFAULT 0,
  retired_count INTEGER NOT NULL DEFAULT 0,
  assigned_count INTEGER NOT NULL DEFAULT 0,
  reserved_count INTEGER NOT NULL DEFAULT 0,
  device_assignable BOOLEAN NOT NULL DEFAULT 0,
  revocable BOOLEAN NOT NULL DEFAULT 0,
  last_seen_at DATETIME NULL,
  gone_at_apple_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  CONSTRAINT fk_license_pools_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT fk_license_pools_app FOREIGN KEY (app_id) REFERENCES apps (id)
);
CREATE UNIQUE INDEX ux_license_pools_asset ON license_pools (account_id, app_id, pricing_param);
CREATE INDEX ix_license_pools_app ON license_pools (app_id);

CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  external_id TEXT NOT NULL,
  client_user_id TEXT NOT NULL,
  email TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL DEFAULT '',
  managed_apple_id TEXT NULL,
  status TEXT NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  removed_at DATETIME NULL
);
CREATE UNIQUE INDEX ux_users_external_id ON users (external_id);
CREATE UNIQUE INDEX ux_users_client_user_id ON users (client_user_id);
CREATE INDEX ix_users_email ON users (email);

CREATE TABLE apple_users (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  user_id INTEGER NULL,
  client_user_id TEXT NOT NULL,
  email TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  invite_code TEXT NULL,
  id_hash TEXT NULL,
  error_message TEXT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  CONSTRAINT fk_apple_users_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT fk_apple_users_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX ux_apple_users_account_client ON apple_users (account_id, client_user_id);
CREATE INDEX ix_apple_users_user ON apple_users (user_id);

CREATE TABLE devices (
  id INTEGER PRIMARY KEY,
  serial_number TEXT NOT NULL,
  udid TEXT NULL,
  name TEXT NOT NULL DEFAULT '',
  platform TEXT NOT NULL,
  os_version TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  country_code TEXT NOT NULL DEFAULT '',
  shared_ipad BOOLEAN NOT NULL DEFAULT 0,
  supervised BOOLEAN NOT NULL DEFAULT 0,
  user_id INTEGER NULL,
  status TEXT NOT NULL,
  retired_at DATETIME NULL,
  restored_at DATETIME NULL,
  last_seen_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  CONSTRAINT fk_devices_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX ux_devices_serial_number ON devices (serial_number);
CREATE INDEX ix_devices_udid ON devices (udid);
CREATE INDEX ix_devices_user ON devices (user_id);
CREATE INDEX ix_devices_status ON devices (status);

CREATE TABLE device_apps (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL,
  app_id INTEGER NULL,
  bundle_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  managed BOOLEAN NOT NULL DEFAULT 0,
  reported_at DATETIME NOT NULL,
  CONSTRAINT fk_device_apps_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE,
  CONSTRAINT fk_device_apps_app FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX ux_device_apps_device_bundle ON device_apps (device_id, bundle_id);
CREATE INDEX ix_device_apps_app ON device_apps (app_id);

CREATE TABLE license_assignments (
  id INTEGER PRIMARY KEY,
  pool_id INTEGER NOT NULL,
  account_id INTEGER NOT NULL,
  app_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  serial_number TEXT NULL,
  client_user_id TEXT NULL,
  device_id INTEGER NULL,
  user_id INTEGER NULL,
  holder_key TEXT NULL,
  status TEXT NOT NULL,
  origin TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  caused_by TEXT NOT NULL DEFAULT '',
  error_number INTEGER NULL,
  error_message TEXT NULL,
  reclaim_reason TEXT NULL,
  reclaimed_by TEXT NULL,
  assigned_at DATETIME NULL,
  reclaimed_at DATETIME NULL,
  removed_at_apple_at DATETIME NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  CONSTRAINT fk_license_assignments_pool FOREIGN KEY (pool_id) REFERENCES license_pools (id),
  CONSTRAINT fk_license_assignments_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE SET NULL,
  CONSTRAINT fk_license_assignments_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX ux_license_assignments_holder ON license_assignments (pool_id, holder_key);
CREATE INDEX ix_license_assignments_pool_status ON license_assignments (pool_id, status);
CREATE INDEX ix_license_assignments_account_status ON license_assignments (account_id, status);
CREATE INDEX ix_license_assignments_app ON license_assignments (app_id);
CREATE INDEX ix_license_assignments_status ON license_assignments (status);
CREATE INDEX ix_license_assignments_serial ON license_assignments (serial_number);
CREATE INDEX ix_license_assignments_client_user ON license_assignments (client_user_id);
CREATE INDEX ix_license_assignments_device ON license_assignments (device_id);
CREATE INDEX ix_license_assignments_user ON license_assignments (user_id);

CREATE TABLE `groups` (
  id INTEGER PRIMARY KEY,
  external_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX ux_groups_external_id ON `groups` (external_id);

CREATE TABLE group_members (
  group_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  created_at DATETIME NOT NULL,
  PRIMARY KEY (group_id, user_id),
  CONSTRAINT fk_group_members_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE,
  CONSTRAINT fk_group_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_group_members_user ON group_members (user_id);

CREATE TABLE labels (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  app_id INTEGER NOT NULL,
  account_id INTEGER NULL,
  license_kind TEXT NULL,
  install_on_enroll BOOLEAN NOT NULL DEFAULT 0,
  install_on_sign_in BOOLEAN NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  CONSTRAINT fk_labels_app FOREIGN KEY (app_id) REFERENCES apps (id),
  CONSTRAINT fk_labels_account FOREIGN KEY (account_id) REFERENCES accounts (id)
);
CREATE INDEX ix_labels_app ON labels (app_id);
CREATE INDEX ix_labels_account ON labels (account_id);

CREATE TABLE label_groups (
  label_id INTEGER NOT NULL,
  group_id INTEGER NOT NULL,
  PRIMARY KEY (label_id, group_id),
  CONSTRAINT fk_label_groups_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE,
  CONSTRAINT fk_label_groups_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE
);
CREATE INDEX ix_label_groups_group ON label_groups (group_id);

CREATE TABLE apple_outbox (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  action TEXT NOT NULL,
  assignment_id INTEGER NULL,
  apple_user_id INTEGER NULL,
  adam_id TEXT NOT NULL DEFAULT '',
  pricing_param TEXT NOT NULL DEFAULT '',
  serial_number TEXT NULL,
  client_user_id TEXT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before DATETIME NOT NULL,
  event_id TEXT NULL,
  last_error TEXT NULL,
  created_at DATETIME NOT NULL,
  sent_at DATETIME NULL,
  completed_at DATETIME NULL
);
CREATE INDEX ix_apple_outbox_queue ON apple_outbox (account_id, status, not_before);
CREATE INDEX ix_apple_outbox_event ON apple_outbox (event_id);
CREATE INDEX ix_apple_outbox_assignment ON apple_outbox (assignment_id);
CREATE INDEX ix_apple_outbox_apple_user ON apple_outbox (apple_user_id);

CREATE TABLE apple_events (
  event_id TEXT NOT NULL PRIMARY KEY,
  account_id INTEGER NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  num_requested INTEGER NOT NULL DEFAULT 0,
  num_completed INTEGER NOT NULL DEFAULT 0,
  failures TEXT NOT NULL,
  sent_at DATETIME NOT NULL,
  next_poll_at DATETIME NOT NULL,
  polled_at DATETIME NULL,
  completed_at DATETIME NULL
);
CREATE INDEX ix_apple_events_poll ON apple_events (status, next_poll_at);
CREATE INDEX ix_apple_events_account ON apple_events (account_id);

CREATE TABLE apple_notifications (
  notification_id TEXT NOT NULL PRIMARY KEY,
  account_id INTEGER NOT NULL,
  type TEXT NOT NULL,
  received_at DATETIME NOT NULL
);
CREATE INDEX ix_apple_notifications_received ON apple_notifications (received_at);

CREATE TABLE sync_runs (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  `trigger` TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at DATETIME NOT NULL,
  finished_at DATETIME NULL,
  pages INTEGER NOT NULL DEFAULT 0,
  items_seen INTEGER NOT NULL DEFAULT 0,
  added INTEGER NOT NULL DEFAULT 0,
  changed INTEGER NOT NULL DEFAULT 0,
  removed INTEGER NOT NULL DEFAULT 0,
  error TEXT NULL
);
CREATE INDEX ix_sync_runs_account ON sync_runs (account_id);
CREATE INDEX ix_sync_runs_status ON sync_runs (status);

CREATE TABLE leases (
  name TEXT NOT NULL PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at DATETIME NOT NULL
);

CREATE TABLE device_commands (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL,
  app_id INTEGER NOT NULL,
  assignment_id INTEGER NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  result TEXT NULL,
  waits_for_assignment BOOLEAN NOT NULL DEFAULT 0,
  created_at DATETIME NOT NULL,
  acknowledged_at DATETIME NULL,
  CONSTRAINT fk_device_commands_device FOREIGN KEY (device_id) REFERENCES devices (id),
  CONSTRAINT fk_device_commands_app FOREIGN KEY (app_id) REFERENCES apps (id)
);
CREATE INDEX ix_device_commands_device ON device_commands (device_id);
CREATE INDEX ix_device_commands_status ON device_commands (status);
CREATE INDEX ix_device_commands_assignment ON device_commands (assignment_id);

CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY,
  at DATETIME NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id TEXT NULL,
  actor_name TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL,
  subject_type TEXT NOT NULL DEFAULT '',
  subject_id INTEGER NULL,
  account_id INTEGER NULL,
  message TEXT NOT NULL DEFAULT '',
  details TEXT NOT NULL
);
CREATE INDEX ix_audit_events_account ON audit_events (account_id);
CREATE INDEX ix_audit_events_subject ON audit_events (subject_type, subject_id);
CREATE INDEX ix_audit_events_action ON audit_events (action);

CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL,
  role TEXT NOT NULL,
  created_by TEXT NOT NULL DEFAULT '',
  created_at DATETIME NOT NULL,
  last_used_at DATETIME NULL,
  revoked_at DATETIME NULL
);
CREATE UNIQUE INDEX ux_api_keys_hash ON api_keys (hash);

CREATE TABLE idempotency_records (
  id INTEGER PRIMARY KEY,
  scope TEXT NOT NULL,
  `key` TEXT NOT NULL,
  operation TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  response TEXT NOT NULL,
  created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX ux_idempotency_records_key ON idempotency_records (scope, `key`);
CREATE INDEX ix_idempotency_records_created ON idempotency_records (created_at);

CREATE TABLE settings (
  name TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at DATETIME NOT NULL
);
