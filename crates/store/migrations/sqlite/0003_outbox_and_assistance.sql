-- The email outbox, access assistance requests, persistent rate-limit counters and job locks.

CREATE TABLE outbox_email (
    outbox_email_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT    NOT NULL UNIQUE,
    to_address       TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    text_body        TEXT    NOT NULL,
    html_body        TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    claimed_until    BIGINT,
    sent_at          BIGINT,
    last_error       TEXT
);
CREATE INDEX outbox_email_due ON outbox_email (sent_at, next_attempt_at);

CREATE TABLE assistance_request (
    assistance_request_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    reference              TEXT    NOT NULL UNIQUE,
    submitted_email        TEXT    NOT NULL,
    problem                TEXT    NOT NULL,
    description            TEXT,
    client_ip              TEXT    NOT NULL,
    user_agent             TEXT    NOT NULL,
    created_at             BIGINT  NOT NULL,
    status                 TEXT    NOT NULL,
    joined_to              BIGINT  REFERENCES assistance_request (assistance_request_id),
    repeat_count           BIGINT  NOT NULL DEFAULT 0,
    person_id              BIGINT  REFERENCES person (person_id),
    account_id             BIGINT  REFERENCES account (account_id),
    dossier                TEXT,
    notified               TEXT,
    processed_at           BIGINT,
    claimed_until          BIGINT,
    closed_by              TEXT,
    closed_at              BIGINT,
    close_note             TEXT
);
CREATE INDEX assistance_request_status ON assistance_request (status, created_at);
CREATE INDEX assistance_request_repeat ON assistance_request (submitted_email, problem, status, created_at);

CREATE TABLE rate_limit_counter (
    bucket        TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    hits          BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- A row per background job whose runs must not overlap across instances; a run starts by updating it.
CREATE TABLE job_lock (
    name  TEXT   PRIMARY KEY,
    runs  BIGINT NOT NULL
);
INSERT INTO job_lock (name, runs) VALUES ('assistance', 0);
