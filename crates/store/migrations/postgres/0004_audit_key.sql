-- The audit chain gets a key (see docs/decisions.md, "Audit chain"): rows are sealed with HMAC under a key derived
-- from the master key, which the database never holds, and so is the head. Migrations have no key, so this one only
-- makes room: the head's seal stays NULL until Lifeline first starts with its key and seals it (a new database), or
-- pins the rows written before with a keyed `audit.seal` row (an existing one). Old rows keep their plain SHA-256
-- hashes; `audit verify` checks them as the start of the log.
--
-- Ids are already NOT NULL BIGINTs here (a primary key); a trigger adds the sequence: an insert whose id is not the
-- next one (1, 2, 3, ... without gaps) is refused.
ALTER TABLE audit_event ADD CONSTRAINT audit_event_id_positive CHECK (audit_event_id > 0);

-- Appending takes the head's row lock first, so MAX here is the row before the new one.
CREATE FUNCTION audit_event_next_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.audit_event_id IS DISTINCT FROM (SELECT COALESCE(MAX(audit_event_id), 0) + 1 FROM audit_event) THEN
        RAISE EXCEPTION 'audit_event ids run 1, 2, 3, ... without gaps: % is not the next one', NEW.audit_event_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_event_next_id BEFORE INSERT ON audit_event
FOR EACH ROW EXECUTE FUNCTION audit_event_next_id();

ALTER TABLE audit_head ADD COLUMN seal TEXT;
