-- Policy (DESIGN §2.4, R4a, R10): groups hold devices as well as users, a group may be dynamic
-- (a rule over device attributes whose members Orchard keeps current), license labels take
-- licenses from one account, an ordered list of accounts or any account, with an optional cap
-- and grace time, and the assignments a label made name it. What must be evaluated is a
-- durable queue row written with the change that causes it; holders a label cannot serve wait
-- in the order they were first covered.

-- A dynamic group's rule (JSON, see model.GroupRule); NULL for a directory group.
ALTER TABLE `groups` ADD COLUMN rule TEXT NULL;

CREATE TABLE group_devices (
  group_id BIGINT NOT NULL,
  device_id BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (group_id, device_id),
  KEY ix_group_devices_device (device_id),
  CONSTRAINT fk_group_devices_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE,
  CONSTRAINT fk_group_devices_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- At most cap_count licenses through the label (NULL: no cap); a holder out of scope keeps the
-- license for grace_seconds before it is reclaimed; a deleted label stays as a tombstone until
-- the evaluation has handed its licenses to other labels or taken them back.
ALTER TABLE labels ADD COLUMN cap_count BIGINT NULL;
ALTER TABLE labels ADD COLUMN grace_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE labels ADD COLUMN deleted_at DATETIME(6) NULL;

-- The accounts a license label takes licenses from, in priority order (none: any account).
CREATE TABLE label_accounts (
  label_id BIGINT NOT NULL,
  account_id BIGINT NOT NULL,
  position INT NOT NULL,
  PRIMARY KEY (label_id, account_id),
  CONSTRAINT fk_label_accounts_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE,
  CONSTRAINT fk_label_accounts_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The label that made an assignment (origin LABEL), and since when its holder is out of the
-- label's scope (grace).
ALTER TABLE license_assignments ADD COLUMN label_id BIGINT NULL;
ALTER TABLE license_assignments ADD COLUMN label_out_since DATETIME(6) NULL;
CREATE INDEX ix_license_assignments_label ON license_assignments (label_id, status);

-- What must be evaluated: an app (app_id), or everything (NULL), not before a time.
CREATE TABLE policy_queue (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  app_id BIGINT NULL,
  reason VARCHAR(1000) NOT NULL DEFAULT '',
  not_before DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY ix_policy_queue_due (not_before)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Holders a label covers but cannot serve (pool empty, cap reached, a rule refused), with why,
-- since when, in fair order.
CREATE TABLE policy_waiting (
  label_id BIGINT NOT NULL,
  holder_key VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
  app_id BIGINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  device_id BIGINT NULL,
  user_id BIGINT NULL,
  code VARCHAR(64) NOT NULL,
  reason VARCHAR(1000) NOT NULL,
  first_covered_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (label_id, holder_key),
  KEY ix_policy_waiting_user (user_id),
  KEY ix_policy_waiting_device (device_id),
  CONSTRAINT fk_policy_waiting_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who left which group when, so that a reclaim can say "removed from group Teachers".
CREATE TABLE policy_departures (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  group_id BIGINT NOT NULL,
  user_id BIGINT NULL,
  device_id BIGINT NULL,
  how VARCHAR(32) NOT NULL,
  at DATETIME(6) NOT NULL,
  KEY ix_policy_departures_group (group_id, at),
  KEY ix_policy_departures_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
