-- Idempotency-Key records of enrolments (src/server/store/d1.ts): the first response per
-- (API key, Idempotency-Key), written in the same transaction as the face it enrolled.
-- Rows past expires_at (ms since epoch) are deleted by later enrolments.
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires_at);
