-- Recovery actions (issue 9): the secrets they hand out, the device authorization after an MFA reset, the
-- time of a session's last second factor (step-up), and four-eyes approvals.

-- Every secret an action creates (links, codes, passes, device-authorization codes, "this wasn't me" links):
-- only its keyed hash is stored; it is consumed by one conditional UPDATE, so two uses cannot both win.
CREATE TABLE recovery_secret (
    recovery_secret_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id          BIGINT  NOT NULL REFERENCES account (account_id),
    kind                TEXT    NOT NULL,
    secret_hash         TEXT    NOT NULL UNIQUE,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    multi_use           BIGINT  NOT NULL DEFAULT 0,
    uses                BIGINT  NOT NULL DEFAULT 0,
    used_at             BIGINT,
    revoked_at          BIGINT,
    -- For a "this wasn't me" link: the action it reports.
    action              TEXT,
    reference           TEXT
);
CREATE INDEX recovery_secret_account ON recovery_secret (account_id, kind);

-- After an MFA reset the next sign-in first proves the registered mailbox (seed 002's Device Authorization).
ALTER TABLE account ADD COLUMN require_device_authorization BIGINT NOT NULL DEFAULT 0;

-- When this session last proved a second factor: expert actions need one within the last ten minutes.
ALTER TABLE web_session ADD COLUMN second_factor_at BIGINT;

-- An action on someone who holds admin permissions waits for a second admin (four-eyes).
CREATE TABLE approval (
    approval_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    action                TEXT    NOT NULL,
    person_id             BIGINT  NOT NULL REFERENCES person (person_id),
    requested_by_account  BIGINT  NOT NULL REFERENCES account (account_id),
    requested_by          TEXT    NOT NULL,
    form                  TEXT    NOT NULL,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    status                TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'approved', 'rejected', 'failed')),
    decided_by            TEXT,
    decided_at            BIGINT
);
CREATE INDEX approval_status ON approval (status, created_at);
