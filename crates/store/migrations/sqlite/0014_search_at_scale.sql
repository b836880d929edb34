-- People search on a million people (issue 13). Search text is kept per person in `person_search`: the
-- lower-cased name, email and usernames in one `haystack`, beside the sort key. Two ways in, chosen per query
-- by the store: the first few thousand people in name order (a covering index, read in order) when the text
-- is common, and a trigram index (FTS5's trigram tokenizer, over the same rows) when it is rare. The store
-- writes the row with the person and their account (`insert_person`, the one place either is created; names,
-- emails and usernames are not edited in place) and `copy-db` rebuilds the table. Not triggers on person and
-- account: they made the row lock every recovery action takes (`UPDATE account SET person_id = person_id`)
-- fail as "database is locked" under concurrent actions.
CREATE TABLE person_search (
    person_id  INTEGER PRIMARY KEY,
    sort_key   TEXT NOT NULL,
    haystack   TEXT NOT NULL
);
CREATE INDEX person_search_order ON person_search (sort_key, person_id, haystack);
CREATE VIRTUAL TABLE person_search_trigrams USING fts5(
    haystack, tokenize = 'trigram', content = 'person_search', content_rowid = 'person_id'
);

-- The index follows the table (FTS5's external-content pattern).
CREATE TRIGGER person_search_ai AFTER INSERT ON person_search BEGIN
    INSERT INTO person_search_trigrams (rowid, haystack) VALUES (new.person_id, new.haystack);
END;
CREATE TRIGGER person_search_ad AFTER DELETE ON person_search BEGIN
    INSERT INTO person_search_trigrams (person_search_trigrams, rowid, haystack)
        VALUES ('delete', old.person_id, old.haystack);
END;
CREATE TRIGGER person_search_au AFTER UPDATE ON person_search BEGIN
    INSERT INTO person_search_trigrams (person_search_trigrams, rowid, haystack)
        VALUES ('delete', old.person_id, old.haystack);
    INSERT INTO person_search_trigrams (rowid, haystack) VALUES (new.person_id, new.haystack);
END;

-- The people there already.
INSERT INTO person_search (person_id, sort_key, haystack)
    SELECT p.person_id, lower(p.display_name), lower(p.display_name) || ' ' || lower(p.email)
        || COALESCE((SELECT ' ' || group_concat(lower(a.username), ' ') FROM account a WHERE a.person_id = p.person_id), '')
    FROM person p;

-- A manager's reports, and "does this person manage anyone", without reading the whole directory.
CREATE INDEX person_manager ON person (manager_id);

-- "Everyone who may view requests" (the admin emails' recipients) without reading a million default grants.
CREATE INDEX permission_grant_dpa ON permission_grant (dpa_level);
