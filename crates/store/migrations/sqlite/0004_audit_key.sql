-- The audit chain gets a key (see docs/decisions.md, "Audit chain"): rows are sealed with HMAC under a key derived
-- from the master key, which the database never holds, and so is the head. Migrations have no key, so this one only
-- makes room: the head's seal stays NULL until Lifeline first starts with its key and seals it (a new database), or
-- pins the rows written before with a keyed `audit.seal` row (an existing one). Old rows keep their plain SHA-256
-- hashes; `audit verify` checks them as the start of the log.
--
-- The ids get the rules the chain relies on. SQLite cannot add NOT NULL to a column, so the table is rebuilt with
-- an INTEGER PRIMARY KEY (an alias of the rowid: never NULL, always an integer; BIGINT PRIMARY KEY allowed NULL and
-- decimals), and a trigger refuses any insert whose id is not the next one (1, 2, 3, ... without gaps).

-- A row whose id is NULL or not an integer could only have been written around Lifeline, and the rebuilt table
-- cannot hold it: stop with a message that says so instead of dropping or renumbering it silently.
CREATE TEMP TABLE audit_0004_precheck (
    bad_rows INTEGER
        CONSTRAINT "audit_event has rows whose id is NULL or not an integer: see docs/decisions.md, Audit chain"
        CHECK (bad_rows = 0)
);
INSERT INTO audit_0004_precheck SELECT COUNT(*) FROM audit_event WHERE typeof(audit_event_id) <> 'integer';
DROP TABLE audit_0004_precheck;

CREATE TABLE audit_event_keyed (
    audit_event_id      INTEGER PRIMARY KEY NOT NULL CHECK (audit_event_id > 0),
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
INSERT INTO audit_event_keyed
SELECT audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, reason, details,
       client_ip, outcome, reference, notified, prev_hash, hash
FROM audit_event ORDER BY audit_event_id;
DROP TABLE audit_event;
ALTER TABLE audit_event_keyed RENAME TO audit_event;
CREATE INDEX audit_event_at ON audit_event (at);
CREATE INDEX audit_event_subject ON audit_event (subject_person_id, at);
-- The dossier asks when an action was last taken on an account.
CREATE INDEX audit_event_account ON audit_event (subject_account_id, action, at);

-- Appending takes the head's lock first, so MAX here is the row before the new one.
CREATE TRIGGER audit_event_next_id BEFORE INSERT ON audit_event
WHEN NEW.audit_event_id IS NULL
  OR NEW.audit_event_id IS NOT (SELECT COALESCE(MAX(audit_event_id), 0) + 1 FROM audit_event)
BEGIN
    SELECT RAISE(ABORT, 'audit_event ids run 1, 2, 3, ... without gaps: this row''s id is not the next one');
END;

ALTER TABLE audit_head ADD COLUMN seal TEXT;
