-- Manager attestation (issue 11): an admin asks the person's line manager, in Lifeline, whether a request is
-- genuine; the answer is evidence for an action whose verification is "verified with line manager".
CREATE TABLE attestation (
    attestation_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_person_id      BIGINT  NOT NULL REFERENCES person (person_id),
    -- The person's manager when asked: only they may answer.
    manager_person_id      BIGINT  NOT NULL REFERENCES person (person_id),
    requested_by_account   BIGINT  NOT NULL REFERENCES account (account_id),
    requested_by           TEXT    NOT NULL,
    -- The assistance request it is about, if any.
    reference              TEXT,
    question               TEXT    NOT NULL,
    -- pending, confirmed, declined
    status                 TEXT    NOT NULL,
    answer_note            TEXT,
    answered_by            TEXT,
    answered_at            BIGINT,
    -- When the answering manager last proved their second factor (their own sign-in with MFA).
    answered_second_factor_at BIGINT,
    created_at             BIGINT  NOT NULL,
    expires_at             BIGINT  NOT NULL
);
CREATE INDEX attestation_subject ON attestation (subject_person_id, status);
CREATE INDEX attestation_manager ON attestation (manager_person_id, status);
