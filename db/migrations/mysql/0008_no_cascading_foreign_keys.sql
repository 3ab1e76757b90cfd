-- Orchard's SQL runs unchanged on distributed MySQL-compatible engines (doc/scale-portable.md):
-- the database no longer deletes or nulls rows behind the store's back. A cascaded change is
-- made inside InnoDB and never reaches the binary log, so Vitess's VReplication (resharding,
-- MoveTables, online DDL) loses it, and a cascade cannot reach a row on another shard. The
-- store already removes the children itself before the only parent it deletes (DeleteLabels:
-- label_groups, label_accounts, policy_waiting); apps, devices, users and groups are never
-- deleted. Dropping a foreign key is a metadata change (no table copy); the index under it
-- stays. One constraint per statement, so a failure leaves a state an operator can read.
ALTER TABLE app_countries DROP FOREIGN KEY fk_app_countries_app;
ALTER TABLE apple_users DROP FOREIGN KEY fk_apple_users_user;
ALTER TABLE devices DROP FOREIGN KEY fk_devices_user;
ALTER TABLE device_apps DROP FOREIGN KEY fk_device_apps_device;
ALTER TABLE device_apps DROP FOREIGN KEY fk_device_apps_app;
ALTER TABLE license_assignments DROP FOREIGN KEY fk_license_assignments_device;
ALTER TABLE license_assignments DROP FOREIGN KEY fk_license_assignments_user;
ALTER TABLE group_members DROP FOREIGN KEY fk_group_members_group;
ALTER TABLE group_members DROP FOREIGN KEY fk_group_members_user;
ALTER TABLE label_groups DROP FOREIGN KEY fk_label_groups_label;
ALTER TABLE label_groups DROP FOREIGN KEY fk_label_groups_group;
ALTER TABLE group_devices DROP FOREIGN KEY fk_group_devices_group;
ALTER TABLE group_devices DROP FOREIGN KEY fk_group_devices_device;
ALTER TABLE label_accounts DROP FOREIGN KEY fk_label_accounts_label;
ALTER TABLE policy_waiting DROP FOREIGN KEY fk_policy_waiting_label;
