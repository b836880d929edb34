-- The authenticator record (issue 15, NIST SP 800-63B-4 §4.1): who made each change to an account's
-- authenticators, and what it names (a passkey's name). Rows written before this migration keep an empty actor.
ALTER TABLE authenticator_history ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE authenticator_history ADD COLUMN detail TEXT;
-- One word for a binding: passkeys were recorded as 'added'.
UPDATE authenticator_history SET change = 'bound' WHERE change = 'added';
