-- A person's second notification address (issue 15, NIST SP 800-63B-4 §4.6): recovery notices go to it as well
-- as to the directory address, once the person proved it with a code sent to it. One per person; a new one
-- replaces it. Only the code's keyed hash is stored, with its expiry and the wrong tries against it.
CREATE TABLE notification_address (
    person_id     BIGINT  PRIMARY KEY REFERENCES person (person_id),
    address       TEXT    NOT NULL,
    added_at      BIGINT  NOT NULL,
    confirmed_at  BIGINT,
    code_hash     TEXT,
    code_expires_at BIGINT,
    failed_tries  BIGINT  NOT NULL DEFAULT 0
);
