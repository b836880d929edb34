-- Nothing on PostgreSQL: migration 0015 keys SQLite's trigram index by name order; PostgreSQL's search reads
-- its pg_trgm index and the name-order index of 0014 as before.
SELECT 1;
