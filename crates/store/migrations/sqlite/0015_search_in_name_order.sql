-- People search on SQLite in name order (issue 13). Migration 0014's trigram index handed back every match of a
-- text in id order, so a common text (a given name: 18,500 of a million people) was sorted whole for each page
-- (p99 140 ms). Now each search row has `ord`, a number that follows name order ((sort_key, person_id)), and the
-- trigram index is keyed by it: the index hands matches back in name order and the search stops at a page.
-- The store keeps `ord` (crates/store/src/sql_search.rs): a new person takes a number between their neighbours,
-- a crowded stretch is spread out again, a large import numbers everyone afresh. The trigram index is
-- contentless (the search table holds the text) and the store writes it with each change of `ord`.
DROP TRIGGER person_search_ai;
DROP TRIGGER person_search_ad;
DROP TRIGGER person_search_au;
DROP TABLE person_search_trigrams;
DROP INDEX person_search_order;

ALTER TABLE person_search ADD COLUMN ord INTEGER;
-- 2^32 apart: room for 32 people between any two before a stretch is spread out again.
UPDATE person_search SET ord = r.n * 4294967296
    FROM (SELECT person_id, ROW_NUMBER() OVER (ORDER BY sort_key, person_id) AS n FROM person_search) r
    WHERE r.person_id = person_search.person_id;
CREATE INDEX person_search_order ON person_search (sort_key, person_id, ord);
CREATE INDEX person_search_ord ON person_search (ord);

CREATE VIRTUAL TABLE person_search_trigrams USING fts5(haystack, tokenize = 'trigram', content = '');
INSERT INTO person_search_trigrams (rowid, haystack) SELECT ord, haystack FROM person_search;
