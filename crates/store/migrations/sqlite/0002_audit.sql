-- The audit log: append-only, one row per event, each row carrying the hash of the row before it.
-- audit_head is the chain's head; appending starts by updating it, which serialises concurrent writers
-- (SQLite: the write lock; PostgreSQL: the row lock) so the chain never forks.
CREATE TABLE audit_event (
    audit_event_id      BIGINT PRIMARY KEY,
    at                  BIGINT NOT NULL,
    actor               TEXT   NOT NULL,
    on_behalf_of        TEXT,
    action              TEXT   NOT NULL,
    subject_person_id   BIGINT,
    subject_account_id  BIGINT,
    reason              TEXT,
    details             TEXT,
    client_ip           TEXT,
    outcome             TEXT   NOT NULL,
    reference           TEXT,
    notified            TEXT,
    prev_hash           TEXT   NOT NULL,
    hash                TEXT   NOT NULL
);
CREATE INDEX audit_event_at ON audit_event (at);
CREATE INDEX audit_event_subject ON audit_event (subject_person_id, at);
-- The dossier asks when an action was last taken on an account.
CREATE INDEX audit_event_account ON audit_event (subject_account_id, action, at);

CREATE TABLE audit_head (
    audit_head_id  BIGINT PRIMARY KEY,
    last_id        BIGINT NOT NULL,
    last_hash      TEXT   NOT NULL
);
INSERT INTO audit_head (audit_head_id, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
