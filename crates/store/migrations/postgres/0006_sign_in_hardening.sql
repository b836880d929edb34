-- Sign-in hardening: growing delays between failures, per-client throttling, enrolment secrets bound to
-- the session that created them.

-- When the last failed (or still undecided) attempt was admitted: the next one waits for the back-off.
ALTER TABLE account ADD COLUMN last_failed_at BIGINT;

-- A TOTP secret shown during enrolment belongs to that session alone (sealed, like confirmed secrets).
ALTER TABLE web_session ADD COLUMN pending_totp BYTEA;

-- Failed sign-ins per client address (per /64 for IPv6) per fixed window.
CREATE TABLE sign_in_throttle (
    bucket        TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    attempts      BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
