-- Policy (DESIGN §2.4, R4a, R10): groups hold devices as well as users, a group may be dynamic
-- (a rule over device attributes whose members Orchard keeps current), license labels take
-- licenses from one account, an ordered list of accounts or any account, with an optional cap
-- and grace time, and the assignments a label made name it. What must be evaluated is a
-- durable queue row written with the change that causes it; holders a label cannot serve wait
-- in the order they were first covered.

-- A dynamic group's rule (JSON, see model.GroupRule); NULL for a directory group.
ALTER TABLE `groups` ADD COLUMN rule TEXT NULL;

CREATE TABLE group_devices (
  group_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  created_at DATETIME NOT NULL,
  PRIMARY KEY (group_id, device_id),
  CONSTRAINT fk_group_devices_group FOREIGN KEY (group_id) REFERENCES `groups` (id) ON DELETE CASCADE,
  CONSTRAINT fk_group_devices_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
);
CREATE INDEX ix_group_devices_device ON group_devices (device_id);

-- At most cap_count licenses through the label (NULL: no cap); a holder out of scope keeps the
-- license for grace_seconds before it is reclaimed; a deleted label stays as a tombstone until
-- the evaluation has handed its licenses to other labels or taken them back.
ALTER TABLE labels ADD COLUMN cap_count INTEGER NULL;
ALTER TABLE labels ADD COLUMN grace_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE labels ADD COLUMN deleted_at DATETIME NULL;

-- The accounts a license label takes licenses from, in priority order (none: any account).
CREATE TABLE label_accounts (
  label_id INTEGER NOT NULL,
  account_id INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (label_id, account_id),
  CONSTRAINT fk_label_accounts_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE,
  CONSTRAINT fk_label_accounts_account FOREIGN KEY (account_id) REFERENCES accounts (id)
);

-- The label that made an assignment (origin LABEL), and since when its holder is out of the
-- label's scope (grace).
ALTER TABLE license_assignments ADD COLUMN label_id INTEGER NULL;
ALTER TABLE license_assignments ADD COLUMN label_out_since DATETIME NULL;
CREATE INDEX ix_license_assignments_label ON license_assignments (label_id, status);

-- What must be evaluated: an app (app_id), or everything (NULL), not before a time.
CREATE TABLE policy_queue (
  id INTEGER PRIMARY KEY,
  app_id INTEGER NULL,
  reason TEXT NOT NULL DEFAULT '',
  not_before DATETIME NOT NULL,
  created_at DATETIME NOT NULL
);
CREATE INDEX ix_policy_queue_due ON policy_queue (not_before);

-- Holders a label covers but cannot serve (pool empty, cap reached, a rule refused), with why,
-- since when, in fair order.
CREATE TABLE policy_waiting (
  label_id INTEGER NOT NULL,
  holder_key TEXT NOT NULL,
  app_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  device_id INTEGER NULL,
  user_id INTEGER NULL,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  first_covered_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  PRIMARY KEY (label_id, holder_key),
  CONSTRAINT fk_policy_waiting_label FOREIGN KEY (label_id) REFERENCES labels (id) ON DELETE CASCADE
);
CREATE INDEX ix_policy_waiting_user ON policy_waiting (user_id);
CREATE INDEX ix_policy_waiting_device ON policy_waiting (device_id);

-- Who left which group when, so that a reclaim can say "removed from group Teachers".
CREATE TABLE policy_departures (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL,
  user_id INTEGER NULL,
  device_id INTEGER NULL,
  how TEXT NOT NULL,
  at DATETIME NOT NULL
);
CREATE INDEX ix_policy_departures_group ON policy_departures (group_id, at);
CREATE INDEX ix_policy_departures_at ON policy_departures (at);
