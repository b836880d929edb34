-- People search on a million people (issue 13). Search text is kept per person in `person_search`: the
-- lower-cased name, email and usernames in one `haystack`, beside the sort key. Two ways in, chosen per query
-- by the store: the first few thousand people in name order (a covering index, read in order) when the text
-- is common, and a trigram index when it is rare. The store writes the row with the person and their account
-- (`insert_person`, the one place either is created; names, emails and usernames are not edited in place)
-- and `copy-db` rebuilds the table.
CREATE TABLE person_search (
    person_id  BIGINT PRIMARY KEY,
    -- Byte order, as SQLite sorts: one order for both backends, and an index the cursor can follow.
    sort_key   TEXT COLLATE "C" NOT NULL,
    haystack   TEXT NOT NULL
);
CREATE INDEX person_search_order ON person_search (sort_key, person_id) INCLUDE (haystack);
CREATE INDEX person_search_trigrams ON person_search USING gin (haystack gin_trgm_ops);

INSERT INTO person_search (person_id, sort_key, haystack)
    SELECT p.person_id, lower(p.display_name), lower(p.display_name) || ' ' || lower(p.email)
        || COALESCE((SELECT ' ' || string_agg(lower(a.username), ' ' ORDER BY a.account_id)
                     FROM account a WHERE a.person_id = p.person_id), '')
    FROM person p;

CREATE INDEX person_manager ON person (manager_id);

-- "Everyone who may view requests" (the admin emails' recipients) without reading a million default grants.
CREATE INDEX permission_grant_dpa ON permission_grant (dpa_level);
