-- Passkeys (issue 14): WebAuthn credentials, several per account, each named by its person. The credential is
-- webauthn-rs's `Passkey` as JSON (public key, signature counter, flags); `credential_id` (base64url) is how an
-- assertion names it, unique across every account.
CREATE TABLE passkey (
    passkey_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT  NOT NULL REFERENCES account (account_id),
    credential_id  TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    credential     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT
);
CREATE INDEX passkey_account ON passkey (account_id);

-- A WebAuthn ceremony in progress (registration or sign-in): begun on any instance, finished on any, once, before
-- it expires. The browser holds the ceremony's secret id; only its keyed hash is stored.
CREATE TABLE webauthn_ceremony (
    ceremony_hash  TEXT    PRIMARY KEY,
    purpose        TEXT    NOT NULL,
    account_id     BIGINT  REFERENCES account (account_id),
    state          TEXT    NOT NULL,
    expires_at     BIGINT  NOT NULL
);
CREATE INDEX webauthn_ceremony_expiry ON webauthn_ceremony (expires_at);
