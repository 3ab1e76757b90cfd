-- A notification is remembered when it arrives and marked applied when done, so that a crash in
-- between lets Apple's retry apply it instead of dropping it as a duplicate.
ALTER TABLE apple_notifications ADD COLUMN applied_at DATETIME(6) NULL;
