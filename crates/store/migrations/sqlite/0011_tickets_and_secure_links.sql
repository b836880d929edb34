-- Managers' delegated resets (issue 11): tickets with their timeline, and the secure links that show a
-- temporary password once.

-- A ticket: what a manager asked for (kind), about whom, and how far it has come.
CREATE TABLE ticket (
    ticket_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    reference            TEXT    NOT NULL UNIQUE,
    -- manager_reset (done at once, waiting for the requester's confirmation) or password_reset (an engineer's)
    kind                 TEXT    NOT NULL,
    requester_person_id  BIGINT  NOT NULL REFERENCES person (person_id),
    subject_person_id    BIGINT  NOT NULL REFERENCES person (person_id),
    subject_account_id   BIGINT  REFERENCES account (account_id),
    -- open, in_progress, resolved, confirmed
    status               TEXT    NOT NULL,
    summary              TEXT    NOT NULL,
    assignee             TEXT,
    -- The keyed hash of the "everything works" link, live while the ticket is resolved.
    confirm_hash         TEXT    UNIQUE,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX ticket_status ON ticket (status, updated_at);
CREATE INDEX ticket_requester ON ticket (requester_person_id);

-- The timeline: every note and status change, oldest first.
CREATE TABLE ticket_note (
    ticket_note_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       BIGINT  NOT NULL REFERENCES ticket (ticket_id),
    at              BIGINT  NOT NULL,
    author          TEXT    NOT NULL,
    -- The status the ticket moved to with this note, if it moved.
    status          TEXT,
    body            TEXT    NOT NULL
);
CREATE INDEX ticket_note_ticket ON ticket_note (ticket_id, ticket_note_id);

-- A secure link shows a temporary password once, to the manager who asked for it: the password is kept
-- sealed (the master key, bound to the link) until the link is used, and wiped when it is.
CREATE TABLE secure_link (
    secure_link_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    link_hash           TEXT    NOT NULL UNIQUE,
    ticket_id           BIGINT  NOT NULL REFERENCES ticket (ticket_id),
    manager_account_id  BIGINT  NOT NULL REFERENCES account (account_id),
    subject_account_id  BIGINT  NOT NULL REFERENCES account (account_id),
    sealed_password     BLOB,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    used_at             BIGINT
);
