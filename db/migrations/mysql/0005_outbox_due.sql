-- The scheduler looks every second for accounts with due outbox items across all accounts
-- (status, then time): without this index that look read the whole outbox, which only grows.
CREATE INDEX ix_apple_outbox_due ON apple_outbox (status, not_before);
