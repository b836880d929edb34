-- People search in the console. SQLite has no index for "contains" (LIKE '%…%'): the embedded database scans
-- person and account, which stays well under a second for the directories it is meant for (see
-- docs/decisions.md, "People search"); PostgreSQL uses trigram indexes.
-- "Only include locked users": the few locked accounts, found without reading the others.
CREATE INDEX account_locked ON account (person_id) WHERE locked_at IS NOT NULL;
