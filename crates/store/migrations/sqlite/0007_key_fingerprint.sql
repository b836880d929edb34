-- The master key's fingerprint (a keyed hash of a constant, never the key): every start and every command
-- compares it, so a key that does not belong to this database is refused before it seals or signs anything.
CREATE TABLE key_fingerprint (
    key_fingerprint_id  BIGINT PRIMARY KEY CHECK (key_fingerprint_id = 1),
    fingerprint         TEXT   NOT NULL,
    created_at          BIGINT NOT NULL
);
