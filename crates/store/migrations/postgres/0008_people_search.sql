-- People search in the console: a part of a name, username or email, case-insensitive, on a million people.
-- Trigram indexes answer "contains" (LIKE '%…%') from the index; pg_trgm is a trusted extension, so the
-- database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX person_name_search ON person USING gin (lower(display_name) gin_trgm_ops);
CREATE INDEX person_email_search ON person USING gin (lower(email) gin_trgm_ops);
CREATE INDEX account_username_search ON account USING gin (lower(username) gin_trgm_ops);
-- "Only include locked users": the few locked accounts, found without reading the others.
CREATE INDEX account_locked ON account (person_id) WHERE locked_at IS NOT NULL;
