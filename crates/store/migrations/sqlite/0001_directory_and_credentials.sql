-- Directory, credentials, sessions and sign-in events.
-- Integers are BIGINT, times are Unix seconds (UTC), booleans are 0/1: the same shapes on every backend.
CREATE TABLE person (
    person_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    display_name    TEXT    NOT NULL,
    email           TEXT    NOT NULL UNIQUE,
    phone           TEXT,
    manager_id      BIGINT  REFERENCES person (person_id),
    department      TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at      BIGINT  NOT NULL
);

CREATE TABLE permission_grant (
    person_id        BIGINT PRIMARY KEY REFERENCES person (person_id),
    dpa_level        BIGINT NOT NULL CHECK (dpa_level BETWEEN 0 AND 3),
    expert_mode      BIGINT NOT NULL,
    auditor          BIGINT NOT NULL,
    directory_admin  BIGINT NOT NULL,
    granted_at       BIGINT NOT NULL,
    granted_by       TEXT   NOT NULL
);

CREATE TABLE account (
    account_id               INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id                BIGINT  NOT NULL REFERENCES person (person_id),
    username                 TEXT    NOT NULL UNIQUE,
    source                   TEXT    NOT NULL CHECK (source IN ('local', 'synchronized', 'sso')),
    password_hash            TEXT,
    password_changed_at      BIGINT,
    failed_attempts          BIGINT  NOT NULL DEFAULT 0,
    lock_count               BIGINT  NOT NULL DEFAULT 0,
    locked_at                BIGINT,
    lock_reason              TEXT,
    locked_until             BIGINT,
    unlocked_by              TEXT,
    unlocked_at              BIGINT,
    require_change_password  BIGINT  NOT NULL DEFAULT 0,
    require_enroll_mfa       BIGINT  NOT NULL DEFAULT 0,
    qa_failed_attempts       BIGINT  NOT NULL DEFAULT 0,
    qa_locked_at             BIGINT,
    created_at               BIGINT  NOT NULL
);
CREATE INDEX account_person ON account (person_id);

CREATE TABLE totp_credential (
    account_id         BIGINT PRIMARY KEY REFERENCES account (account_id),
    secret_ciphertext  BLOB   NOT NULL,
    confirmed_at       BIGINT,
    last_used_step     BIGINT NOT NULL DEFAULT -1,
    created_at         BIGINT NOT NULL
);

CREATE TABLE backup_code (
    backup_code_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      BIGINT  NOT NULL REFERENCES account (account_id),
    code_hash       TEXT    NOT NULL,
    used_at         BIGINT,
    created_at      BIGINT  NOT NULL,
    UNIQUE (account_id, code_hash)
);

CREATE TABLE qa_answer (
    account_id      BIGINT NOT NULL REFERENCES account (account_id),
    question_index  BIGINT NOT NULL,
    answer_hash     TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, question_index)
);

-- Every authenticator ever bound or removed, with times (NIST SP 800-63B-4 AUTHB-2/5).
CREATE TABLE authenticator_history (
    authenticator_history_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id                BIGINT  NOT NULL REFERENCES account (account_id),
    kind                      TEXT    NOT NULL,
    change                    TEXT    NOT NULL,
    at                        BIGINT  NOT NULL
);
CREATE INDEX authenticator_history_account ON authenticator_history (account_id, at);

CREATE TABLE web_session (
    web_session_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash      TEXT    NOT NULL UNIQUE,
    account_id      BIGINT  NOT NULL REFERENCES account (account_id),
    stage           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);
CREATE INDEX web_session_account ON web_session (account_id);

CREATE TABLE sign_in_event (
    sign_in_event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id        BIGINT  REFERENCES account (account_id),
    at                BIGINT  NOT NULL,
    outcome           TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    client_ip         TEXT    NOT NULL,
    city              TEXT,
    country           TEXT,
    asn               BIGINT,
    network           TEXT    NOT NULL,
    user_agent        TEXT    NOT NULL
);
CREATE INDEX sign_in_event_account ON sign_in_event (account_id, at);
