-- Orchard's initial schema for MySQL / MariaDB. Forward-only: never edit a migration that has
-- shipped; add a new numbered file instead.

CREATE TABLE accounts (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  org_name VARCHAR(255) NOT NULL DEFAULT '',
  location_name VARCHAR(255) NOT NULL DEFAULT '',
  country_code VARCHAR(8) NOT NULL DEFAULT '',
  default_platform VARCHAR(64) NOT NULL DEFAULT '',
  website_url VARCHAR(255) NOT NULL DEFAULT '',
  apple_uid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  location_key VARCHAR(128) COLLATE utf8mb4_bin NULL,
  token_ciphertext BLOB NOT NULL,
  token_fingerprint VARCHAR(64) NOT NULL DEFAULT '',
  token_expires_at DATETIME(6) NOT NULL,
  notification_secret_ciphertext BLOB NULL,
  notifications_enabled TINYINT(1) NOT NULL DEFAULT 0,
  health VARCHAR(32) NOT NULL,
  health_changed_at DATETIME(6) NOT NULL,
  claimed_by_id VARCHAR(255) NULL,
  claimed_by_name VARCHAR(255) NULL,
  last_error TEXT NULL,
  throttled_until DATETIME(6) NULL,
  throttle_reason VARCHAR(255) NULL,
  assets_version_id VARCHAR(128) NOT NULL DEFAULT '',
  assignments_version_id VARCHAR(128) NOT NULL DEFAULT '',
  users_version_id VARCHAR(128) NOT NULL DEFAULT '',
  sync_status VARCHAR(32) NOT NULL DEFAULT 'NEVER',
  last_synced_at DATETIME(6) NULL,
  last_full_sync_at DATETIME(6) NULL,
  next_sync_at DATETIME(6) NULL,
  next_full_sync_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  removed_at DATETIME(6) NULL,
  UNIQUE KEY ux_accounts_location_key (location_key),
  KEY ix_accounts_next_sync (next_sync_at),
  KEY ix_accounts_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE apps (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  adam_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
  kind VARCHAR(16) NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  bundle_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  icon_url VARCHAR(1024) NOT NULL DEFAULT '',
  platforms VARCHAR(255) NOT NULL DEFAULT '',
  is_b2b TINYINT(1) NOT NULL DEFAULT 0,
  minimum_os_version VARCHAR(32) NOT NULL DEFAULT '',
  version VARCHAR(64) NOT NULL DEFAULT '',
  metadata_refreshed_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_apps_adam_id (adam_id),
  KEY ix_apps_name (name),
  KEY ix_apps_bundle_id (bundle_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE app_countries (
  app_id BIGINT NOT NULL,
  country_code VARCHAR(8) NOT NULL,
  available TINYINT(1) NOT NULL,
  checked_at DATETIME(6) NOT NULL,
  PRIMARY KEY (app_id, country_code),
  CONSTRAINT fk_app_countries_app FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE license_pools (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  adam_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
  pricing_param VARCHAR(16) NOT NULL,
  total_count BIGINT NOT NULL DEFAULT 0,
  unlimited TINYINT(1) NOT NULL DEFAULT 0,
  apple_assigned_count BIGINT NOT NULL DEFAULT 0,
  apple_available_count BIGINT NOT NULL DEFAULT 0,
  retired_count BIGINT NOT NULL DEFAULT 0,
  assigned_count BIGINT NOT NULL DEFAULT 0,
  reserved_count BIGINT NOT NULL DEFAULT 0,
  device_assignable TINYINT(1) NOT NULL DEFAULT 0,
  revocable TINYINT(1) NOT NULL DEFAULT 0,
  last_seen_at DATETIME(6) NULL,
  gone_at_apple_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_license_pools_asset (account_id, app_id, pricing_param),
  KEY ix_license_pools_app (app_id),
  CONSTRAINT fk_license_pools_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT fk_license_pools_app FOREIGN KEY (app_id) REFERENCES apps (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  external_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  client_user_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  email VARCHAR(320) NOT NULL DEFAULT '',
  name VARCHAR(255) NOT NULL DEFAULT '',
  managed_apple_id VARCHAR(320) NULL,
  status VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  removed_at DATETIME(6) NULL,
  UNIQUE KEY ux_users_external_id (external_id),
  UNIQUE KEY ux_users_client_user_id (client_user_id),
  KEY ix_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE apple_users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id BIGINT NOT NULL,
  user_id BIGINT NULL,
  client_user_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  email VARCHAR(320) NOT NULL DEFAULT '',
  status VARCHAR(16) NOT NULL,
  invite_code VARCHAR(255) NULL,
  id_hash VARCHAR(255) NULL,
  error_message TEXT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_apple_users_account_client (account_id, client_user_id),
  KEY ix_apple_users_user (user_id),
  CONSTRAINT fk_apple_users_account FOREIGN KEY (account_id) REFERENCES accounts (id),
  CONSTRAINT fk_apple_users_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE devices (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  serial_number VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
  udid VARCHAR(128) COLLATE utf8mb4_bin NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  platform VARCHAR(16) NOT NULL,
  os_version VARCHAR(32) NOT NULL DEFAULT '',
  model VARCHAR(128) NOT NULL DEFAULT '',
  country_code VARCHAR(8) NOT NULL DEFAULT '',
  shared_ipad TINYINT(1) NOT NULL DEFAULT 0,
  supervised TINYINT(1) NOT NULL DEFAULT 0,
  user_id BIGINT NULL,
  status VARCHAR(16) NOT NULL,
  retired_at DATETIME(6) NULL,
  restored_at DATETIME(6) NULL,
  last_seen_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_devices_serial_number (serial_number),
  KEY ix_devices_udid (udid),
  KEY ix_devices_user (user_id),
  KEY ix_devices_status (status),
  CONSTRAINT fk_devices_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE device_apps (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  device_id BIGINT NOT NULL,
  app_id BIGINT NULL,
  bundle_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  version VARCHAR(64) NOT NULL DEFAULT '',
  managed TINYINT(1) NOT NULL DEFAULT 0,
  reported_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_device_apps_device_bundle (device_id, bundle_id),
  KEY ix_device_apps_app (app_id),
  CONSTRAINT fk_device_apps_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE,
  CONSTRAINT fk_device_apps_app FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE license_assignments (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pool_id BIGINT NOT NULL,
  account_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  serial_number VARCHAR(128) COLLATE utf8mb4_bin NULL,
  client_user_id VARCHAR(255) COLLATE utf8mb4_bin NULL,
  device_id BIGINT NULL,
  user_id BIGINT NULL,
  holder_key VARCHAR(300) COLLATE utf8mb4_bin NULL,
  status VARCHAR(32) NOT NULL,
  origin VARCHAR(32) NOT NULL,
  reason VARCHAR(1024) NOT NULL DEFAULT '',
  caused_by VARCHAR(255) NOT NULL DEFAULT '',
  error_number INT NULL,
  error_message TEXT NULL,
  reclaim_reason VARCHAR(1024) NULL,
  reclaimed_by VARCHAR(255) NULL,
  assigned_at DATETIME(6) NULL,
  reclaimed_at DATETIME(6) NULL,
  removed_at_apple_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_license_assignments_holder (pool_id, holder_key),
  KEY ix_license_assignments_pool_status (pool_id, status),
  KEY ix_license_assignments_account_status (account_id, status),
  KEY ix_license_assignments_app (app_id),
  KEY ix_license_assignments_status (status),
  KEY ix_license_assignments_serial (serial_number),
  KEY ix_license_assignments_client_user (client_user_id),
  KEY ix_license_assignments_device (device_id),
  KEY ix_license_assignments_user (user_id),
  CONSTRAINT fk_license_assignments_pool FOREIGN KEY (pool_id) REFERENCES license_pools (id),
  CONSTRAINT fk_license_assignments_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE SET NULL,
  CONSTRAINT fk_license_assignments_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `groups` (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  external_id VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_groups_external_id (external_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE group_members (
  group_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (group_id, user_id),
  KEY ix_group_members_user (user_id),
  CONSTRAINT fk_group_members_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE,
  CONSTRAINT fk_group_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE labels (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  name VARCHAR(255) NOT NULL,
  app_id BIGINT NOT NULL,
  account_id BIGINT NULL,
  license_kind VARCHAR(16) NULL,
  install_on_enroll TINYINT(1) NOT NULL DEFAULT 0,
  install_on_sign_in TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  KEY ix_labels_app (app_id),
  KEY ix_labels_account (account_id),
  CONSTRAINT fk_labels_app FOREIGN KEY (app_id) REFERENCES apps (id),
  CONSTRAINT fk_labels_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE label_groups (
  label_id BIGINT NOT NULL,
  group_id BIGINT NOT NULL,
  PRIMARY KEY (label_id, group_id),
  KEY ix_label_groups_group (group_id),
  CONSTRAINT fk_label_groups_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE,
  CONSTRAINT fk_label_groups_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE apple_outbox (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id BIGINT NOT NULL,
  action VARCHAR(32) NOT NULL,
  assignment_id BIGINT NULL,
  apple_user_id BIGINT NULL,
  adam_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  pricing_param VARCHAR(16) NOT NULL DEFAULT '',
  serial_number VARCHAR(128) COLLATE utf8mb4_bin NULL,
  client_user_id VARCHAR(255) COLLATE utf8mb4_bin NULL,
  status VARCHAR(16) NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  not_before DATETIME(6) NOT NULL,
  event_id VARCHAR(128) NULL,
  last_error TEXT NULL,
  created_at DATETIME(6) NOT NULL,
  sent_at DATETIME(6) NULL,
  completed_at DATETIME(6) NULL,
  KEY ix_apple_outbox_queue (account_id, status, not_before),
  KEY ix_apple_outbox_event (event_id),
  KEY ix_apple_outbox_assignment (assignment_id),
  KEY ix_apple_outbox_apple_user (apple_user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE apple_events (
  event_id VARCHAR(128) NOT NULL PRIMARY KEY,
  account_id BIGINT NOT NULL,
  action VARCHAR(32) NOT NULL,
  status VARCHAR(16) NOT NULL,
  num_requested INT NOT NULL DEFAULT 0,
  num_completed INT NOT NULL DEFAULT 0,
  failures MEDIUMTEXT NOT NULL,
  sent_at DATETIME(6) NOT NULL,
  next_poll_at DATETIME(6) NOT NULL,
  polled_at DATETIME(6) NULL,
  completed_at DATETIME(6) NULL,
  KEY ix_apple_events_poll (status, next_poll_at),
  KEY ix_apple_events_account (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE apple_notifications (
  notification_id VARCHAR(128) NOT NULL PRIMARY KEY,
  account_id BIGINT NOT NULL,
  type VARCHAR(64) NOT NULL,
  received_at DATETIME(6) NOT NULL,
  KEY ix_apple_notifications_received (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE sync_runs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id BIGINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  `trigger` VARCHAR(32) NOT NULL,
  status VARCHAR(16) NOT NULL,
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  pages INT NOT NULL DEFAULT 0,
  items_seen INT NOT NULL DEFAULT 0,
  added INT NOT NULL DEFAULT 0,
  changed INT NOT NULL DEFAULT 0,
  removed INT NOT NULL DEFAULT 0,
  error TEXT NULL,
  KEY ix_sync_runs_account (account_id),
  KEY ix_sync_runs_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE leases (
  name VARCHAR(191) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  holder VARCHAR(191) NOT NULL,
  expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE device_commands (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  device_id BIGINT NOT NULL,
  app_id BIGINT NOT NULL,
  assignment_id BIGINT NULL,
  kind VARCHAR(32) NOT NULL,
  status VARCHAR(16) NOT NULL,
  reason VARCHAR(1024) NOT NULL DEFAULT '',
  result TEXT NULL,
  waits_for_assignment TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  acknowledged_at DATETIME(6) NULL,
  KEY ix_device_commands_device (device_id),
  KEY ix_device_commands_status (status),
  KEY ix_device_commands_assignment (assignment_id),
  CONSTRAINT fk_device_commands_device FOREIGN KEY (device_id) REFERENCES devices (id),
  CONSTRAINT fk_device_commands_app FOREIGN KEY (app_id) REFERENCES apps (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at DATETIME(6) NOT NULL,
  actor_kind VARCHAR(16) NOT NULL,
  actor_id VARCHAR(64) NULL,
  actor_name VARCHAR(255) NOT NULL DEFAULT '',
  action VARCHAR(64) NOT NULL,
  subject_type VARCHAR(64) NOT NULL DEFAULT '',
  subject_id BIGINT NULL,
  account_id BIGINT NULL,
  message VARCHAR(2048) NOT NULL DEFAULT '',
  details MEDIUMTEXT NOT NULL,
  KEY ix_audit_events_account (account_id),
  KEY ix_audit_events_subject (subject_type, subject_id),
  KEY ix_audit_events_action (action)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE api_keys (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  prefix VARCHAR(32) NOT NULL,
  hash CHAR(64) COLLATE utf8mb4_bin NOT NULL,
  role VARCHAR(16) NOT NULL,
  created_by VARCHAR(255) NOT NULL DEFAULT '',
  created_at DATETIME(6) NOT NULL,
  last_used_at DATETIME(6) NULL,
  revoked_at DATETIME(6) NULL,
  UNIQUE KEY ux_api_keys_hash (hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE idempotency_records (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  scope VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
  `key` VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
  operation VARCHAR(64) NOT NULL,
  request_hash CHAR(64) NOT NULL,
  response MEDIUMTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY ux_idempotency_records_key (scope, `key`),
  KEY ix_idempotency_records_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE settings (
  name VARCHAR(191) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
