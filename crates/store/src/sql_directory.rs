//! People, accounts and grants on the SQL backends.

use super::sql::*;
use super::*;
use sqlx::Row;
use std::collections::HashMap;

/// The grant columns of the account's person (the defaults when no grant row exists), for a query on `account`.
const GRANT_OF_ACCOUNT: &str = "\
    COALESCE((SELECT g.dpa_level FROM permission_grant g WHERE g.person_id = account.person_id), 0) AS dpa_level, \
    COALESCE((SELECT g.expert_mode FROM permission_grant g WHERE g.person_id = account.person_id), 0) AS expert_mode, \
    COALESCE((SELECT g.auditor FROM permission_grant g WHERE g.person_id = account.person_id), 0) AS auditor, \
    COALESCE((SELECT g.directory_admin FROM permission_grant g WHERE g.person_id = account.person_id), 0) \
      AS directory_admin";

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn create_person(
        &self,
        new: &NewPerson,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<(Person, Account)> {
        let mut tx = self.begin_write().await?;
        let created = insert_person(&mut tx, self.backend, self.audit_key()?, new, now, audit).await?;
        tx.commit().await.db()?;
        Ok(created)
    }

    async fn import_people(
        &self,
        rows: &[NewPerson],
        now: Timestamp,
        audit: &AuditEntry,
        progress: &(dyn Fn(usize) + Sync),
    ) -> StoreResult<usize> {
        // A few hundred rows per statement, ids reserved up front (so a report can name a manager of the same
        // batch), the audit chain extended in bulk: ~20 statements per 500 people instead of ~3,000.
        let key = self.audit_key()?;
        let mut tx = self.begin_write().await?;
        let mut head = super::sql_audit::lock_head(&mut tx).await?; // SQLite's write lock from here on
        if self.backend == Backend::Sqlite {
            // A million rows touch indexes far larger than SQLite's default 2 MB page cache (5,600 rows/s
            // at 1M, 9,100 at 100k): this connection gets 256 MB while it imports.
            sqlx::query("PRAGMA cache_size = -262144").execute(&mut *tx).await.db()?;
        }
        if !head.sealed_by(key) {
            return Err(super::sql_audit::head_not_ours());
        }
        let mut ids: HashMap<String, i64> = HashMap::new();
        // Managers who are not rows of the file: their ids come from the directory.
        let in_file: std::collections::HashSet<&str> = rows.iter().map(|r| r.email.as_str()).collect();
        let outside: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.manager_email.as_ref())
            .map(|m| m.as_str())
            .filter(|m| !in_file.contains(m))
            .collect::<std::collections::HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in outside.chunks(MANY_PER_STATEMENT) {
            let sql = format!(
                "SELECT person_id, email FROM person WHERE email IN ({})",
                Placeholders::new(self.backend).list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for email in chunk {
                query = query.bind(*email);
            }
            for row in query.fetch_all(&mut *tx).await.db()? {
                ids.insert(row.try_get("email").db()?, row.try_get("person_id").db()?);
            }
        }
        // SQLite's search order (migration 0015): a large import numbers everyone afresh at its end (one pass);
        // a small one into a large directory places each new person between their neighbours.
        let renumber = self.backend == Backend::Sqlite && {
            let existing: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM person_search").fetch_one(&mut *tx).await.db()?;
            rows.len() as i64 * 8 >= existing
        };
        let place = self.backend == Backend::Sqlite && !renumber;
        let taken = |e: sqlx::Error| unique_violation(e, "an email or username of the file was taken meanwhile");
        let mut done = 0;
        for chunk in rows.chunks(MANY_PER_STATEMENT) {
            let people = self.reserve_ids(&mut tx, "person", "person_id", chunk.len()).await?;
            let accounts = self.reserve_ids(&mut tx, "account", "account_id", chunk.len()).await?;
            for (row, id) in chunk.iter().zip(&people) {
                ids.insert(row.email.as_str().to_owned(), *id);
            }
            let mut managers = Vec::with_capacity(chunk.len());
            for row in chunk {
                managers.push(match &row.manager_email {
                    None => None,
                    Some(m) => Some(
                        *ids.get(m.as_str())
                            .ok_or_else(|| StoreError::NotFound(format!("manager {m} is not in the directory")))?,
                    ),
                });
            }
            let sql = format!(
                "INSERT INTO person (person_id, display_name, email, phone, manager_id, department, status, created_at) \
                 VALUES {}",
                Placeholders::new(self.backend).rows(chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((row, id), manager) in chunk.iter().zip(&people).zip(&managers) {
                query = query
                    .bind(*id)
                    .bind(row.display_name.as_str())
                    .bind(row.email.as_str())
                    .bind(row.phone.as_deref())
                    .bind(*manager)
                    .bind(row.department.as_deref())
                    .bind(row.status.as_str())
                    .bind(now);
            }
            query.execute(&mut *tx).await.map_err(taken)?;
            let sql = format!(
                "INSERT INTO account (account_id, person_id, username, source, password_hash, password_changed_at, \
                 require_change_password, created_at) VALUES {}",
                Placeholders::new(self.backend).rows(chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((row, person), account) in chunk.iter().zip(&people).zip(&accounts) {
                query = query
                    .bind(*account)
                    .bind(*person)
                    .bind(row.username.as_str())
                    .bind(row.source.as_str())
                    .bind(row.password_hash.as_deref())
                    .bind(row.password_hash.as_ref().map(|_| now))
                    .bind(i64::from(row.require_change_password))
                    .bind(now);
            }
            query.execute(&mut *tx).await.map_err(taken)?;
            // The search rows (migration 0014), lower-cased by the database as `insert_person` does.
            let mut p = Placeholders::new(self.backend);
            let values: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let (id, name, again, email, user) = (p.next(), p.next(), p.next(), p.next(), p.next());
                    format!("({id}, lower({name}), lower({again}) || ' ' || lower({email}) || ' ' || lower({user}))")
                })
                .collect();
            let sql = format!("INSERT INTO person_search (person_id, sort_key, haystack) VALUES {}", values.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (row, id) in chunk.iter().zip(&people) {
                let name = row.display_name.as_str();
                query = query.bind(*id).bind(name).bind(name).bind(row.email.as_str()).bind(row.username.as_str());
            }
            query.execute(&mut *tx).await.db()?;
            if place {
                for id in &people {
                    super::sql_search::place(&mut tx, *id).await?;
                }
            }
            let sql = format!(
                "INSERT INTO permission_grant (person_id, dpa_level, expert_mode, auditor, directory_admin, granted_at, \
                 granted_by) VALUES {}",
                Placeholders::new(self.backend).rows(chunk.len(), 7)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (row, id) in chunk.iter().zip(&people) {
                let g = &row.grant;
                query = query
                    .bind(*id)
                    .bind(i64::from(g.dpa_level))
                    .bind(i64::from(g.expert_mode))
                    .bind(i64::from(g.auditor))
                    .bind(i64::from(g.directory_admin))
                    .bind(now)
                    .bind("system");
            }
            query.execute(&mut *tx).await.db()?;
            for (row, account) in chunk.iter().zip(&accounts) {
                if row.password_hash.is_some() {
                    history(&mut tx, AccountId(*account), "password", "bound", &audit.actor, None, now).await?;
                }
            }
            let entries: Vec<AuditEntry> = people
                .iter()
                .zip(&accounts)
                .map(|(person, account)| {
                    let mut entry = audit.clone();
                    entry.subject_person_id = Some(*person);
                    entry.subject_account_id = Some(*account);
                    entry
                })
                .collect();
            head = super::sql_audit::append_many(&mut tx, self.backend, key, &head, &entries).await?;
            done += chunk.len();
            progress(done);
        }
        if renumber {
            super::sql_search::renumber_all(&mut tx).await?;
        }
        if self.backend == Backend::Sqlite {
            // The pool keeps the connection: it goes back with the default cache (the pages written spill to
            // the WAL, as the commit would write them anyway).
            sqlx::query("PRAGMA cache_size = -2000").execute(&mut *tx).await.db()?;
        }
        tx.commit().await.db()?;
        if self.backend == Backend::Postgres && rows.len() >= 10_000 {
            // The planner's statistics still describe the directory before the import until autovacuum comes
            // round: measured after a million-row import, a search page's accounts were read with a scan of
            // every account (47 ms) instead of `account_person` (0.2 ms).
            sqlx::query("ANALYZE person, account, person_search, permission_grant").execute(&self.pool).await.db()?;
        }
        Ok(rows.len())
    }

    async fn taken(
        &self,
        emails: &[&str],
        usernames: &[&str],
    ) -> StoreResult<(std::collections::HashSet<String>, std::collections::HashSet<String>)> {
        let mut found = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for (values, sql, out) in [
            (emails, "SELECT email AS v FROM person WHERE email IN", &mut found.0),
            (usernames, "SELECT username AS v FROM account WHERE username IN", &mut found.1),
        ] {
            for chunk in values.chunks(MANY_PER_STATEMENT) {
                let sql = format!("{sql} ({})", Placeholders::new(self.backend).list(chunk.len()));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for v in chunk {
                    query = query.bind(*v);
                }
                for row in query.fetch_all(&self.pool).await.db()? {
                    out.insert(row.try_get("v").db()?);
                }
            }
        }
        Ok(found)
    }

    async fn person(&self, id: PersonId) -> StoreResult<Option<Person>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM person WHERE person_id = $1")))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn person_by_email(&self, email: &EmailAddress) -> StoreResult<Option<Person>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PERSON_COLUMNS} FROM person WHERE email = $1")))
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn accounts_of(&self, person: PersonId) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account WHERE person_id = $1 ORDER BY account_id"
        )))
        .bind(person.0)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(account_from_row).collect()
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE account_id = $1")))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>> {
        let login = login.trim().to_lowercase();
        // No username or email has a control character, and PostgreSQL refuses NUL in text: such a login names
        // nobody (the caller's answer is the one for an unknown login, never an error).
        if login.chars().any(char::is_control) {
            return Ok(None);
        }
        let by_username =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE username = $1")))
                .bind(&login)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        let row = match by_username {
            Some(row) => Some(row),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM account WHERE source <> 'sso' AND person_id = \
                     (SELECT person_id FROM person WHERE email = $1) ORDER BY account_id LIMIT 1"
            )))
            .bind(&login)
            .fetch_optional(&self.pool)
            .await
            .db()?,
        };
        row.as_ref().map(account_from_row).transpose()
    }

    async fn grant(&self, person: PersonId) -> StoreResult<Grant> {
        let row = sqlx::query(
            "SELECT dpa_level, expert_mode, auditor, directory_admin FROM permission_grant WHERE person_id = $1",
        )
        .bind(person.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(grant_from_row).transpose().map(Option::unwrap_or_default)
    }

    async fn actor_record(&self, account: AccountId) -> StoreResult<Option<ActorRecord>> {
        // The account's columns come unqualified (shared with every other account query), so the person,
        // the authenticator and the grant are subqueries rather than joins that would make names ambiguous.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, \
               (SELECT p.status FROM person p WHERE p.person_id = account.person_id) AS person_status, \
               (SELECT COUNT(*) FROM totp_credential t \
                  WHERE t.account_id = account.account_id AND t.confirmed_at IS NOT NULL) AS confirmed_totp, \
               (SELECT COUNT(*) FROM passkey pk WHERE pk.account_id = account.account_id) AS passkeys, \
               {GRANT_OF_ACCOUNT} \
             FROM account WHERE account_id = $1"
        )))
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        // A person removed while the account row stays is no actor either.
        let Some(status) = row.try_get::<Option<String>, _>("person_status").db()? else { return Ok(None) };
        Ok(Some(ActorRecord {
            account: account_from_row(&row)?,
            person_status: status.parse::<PersonStatus>().map_err(|e| StoreError::Corrupt(e.to_string()))?,
            has_totp: row.try_get::<i64, _>("confirmed_totp").db()? > 0,
            has_passkey: row.try_get::<i64, _>("passkeys").db()? > 0,
            grant: grant_from_row(&row)?,
        }))
    }

    async fn person_grant(&self, person: PersonId) -> StoreResult<Option<Grant>> {
        let row = sqlx::query(
            "SELECT COALESCE(g.dpa_level, 0) AS dpa_level, COALESCE(g.expert_mode, 0) AS expert_mode, \
                    COALESCE(g.auditor, 0) AS auditor, COALESCE(g.directory_admin, 0) AS directory_admin \
             FROM person p LEFT JOIN permission_grant g ON g.person_id = p.person_id WHERE p.person_id = $1",
        )
        .bind(person.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn set_grant(&self, person: PersonId, grant: &Grant, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.audited().await?;
        write_grant(&mut tx, person, grant, &audit.actor, audit.at).await?;
        tx.commit(audit).await?;
        Ok(())
    }

    async fn count_people(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM person").fetch_one(&self.pool).await.db()?.try_get("n").db()?)
    }

    async fn search_people(
        &self,
        text: &str,
        locked_only: bool,
        now: Timestamp,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> StoreResult<Vec<PersonHit>> {
        let pattern = like_pattern(text);
        if !locked_only {
            let ids = self.search_ids(text, &pattern, after, limit).await?;
            return self.hits_of(&ids).await;
        }
        let people = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS}, COALESCE(g.dpa_level, 0) AS dpa_level, COALESCE(g.expert_mode, 0) AS expert_mode, \
                 COALESCE(g.auditor, 0) AS auditor, COALESCE(g.directory_admin, 0) AS directory_admin, \
                 lower(display_name) AS sort_key \
             FROM person LEFT JOIN permission_grant g USING (person_id) WHERE person_id IN ( \
                 SELECT person_id FROM person WHERE lower(display_name) LIKE $1 ESCAPE '\\' OR lower(email) LIKE $1 ESCAPE '\\' \
                 UNION SELECT person_id FROM account WHERE lower(username) LIKE $1 ESCAPE '\\') \
             AND ($2 = 0 OR person_id IN (SELECT person_id FROM account WHERE locked_at IS NOT NULL \
                 AND (locked_until IS NULL OR locked_until > $3))) \
             AND ($4 = 0 OR lower(display_name) > $5 OR (lower(display_name) = $5 AND person_id > $6)) \
             ORDER BY lower(display_name), person_id LIMIT $7"
        )))
        .bind(&pattern)
        .bind(i64::from(locked_only))
        .bind(now)
        .bind(i64::from(after.is_some()))
        .bind(after.map(|(key, _)| key).unwrap_or_default())
        .bind(after.map(|(_, id)| id.0).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        self.hits(&people).await
    }

    async fn has_reports(&self, manager: PersonId) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM person WHERE manager_id = $1")
            .bind(manager.0)
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(n > 0)
    }

    async fn manages(&self, manager: PersonId, person: PersonId) -> StoreResult<bool> {
        // Up the person's chain of managers (bounded: imports refuse cycles, and a bound keeps a cycle made
        // by hand from looping).
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE chain (person_id, manager_id, depth) AS ( \
                 SELECT person_id, manager_id, 0 FROM person WHERE person_id = $1 \
                 UNION ALL SELECT p.person_id, p.manager_id, c.depth + 1 FROM person p \
                   JOIN chain c ON p.person_id = c.manager_id WHERE c.depth < {MAX_LINE_DEPTH}) \
             SELECT COUNT(*) FROM chain WHERE manager_id = $2 AND person_id <> $2"
        )))
        .bind(person.0)
        .bind(manager.0)
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(n > 0)
    }

    async fn search_reports(&self, manager: PersonId, text: &str, limit: i64) -> StoreResult<Vec<PersonHit>> {
        let pattern = like_pattern(text);
        let people = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE line (person_id, depth) AS ( \
                 SELECT person_id, 1 FROM person WHERE manager_id = $1 \
                 UNION ALL SELECT p.person_id, l.depth + 1 FROM person p JOIN line l ON p.manager_id = l.person_id \
                   WHERE l.depth < {MAX_LINE_DEPTH}) \
             SELECT {PERSON_COLUMNS}, COALESCE(g.dpa_level, 0) AS dpa_level, COALESCE(g.expert_mode, 0) AS expert_mode, \
                 COALESCE(g.auditor, 0) AS auditor, COALESCE(g.directory_admin, 0) AS directory_admin, \
                 lower(display_name) AS sort_key \
             FROM person LEFT JOIN permission_grant g USING (person_id) \
             WHERE person_id IN (SELECT person_id FROM line) AND person_id <> $1 AND person_id IN ( \
                 SELECT person_id FROM person WHERE lower(display_name) LIKE $2 ESCAPE '\\' OR lower(email) LIKE $2 ESCAPE '\\' \
                 UNION SELECT person_id FROM account WHERE lower(username) LIKE $2 ESCAPE '\\') \
             ORDER BY lower(display_name), person_id LIMIT $3"
        )))
        .bind(manager.0)
        .bind(&pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        self.hits(&people).await
    }

    async fn count_directory_admins(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM permission_grant WHERE directory_admin = 1")
            .fetch_one(&self.pool)
            .await
            .db()?
            .try_get("n")
            .db()?)
    }
}

/// The text is data, never pattern: `%`, `_` and the escape character itself match only themselves.
fn like_pattern(text: &str) -> String {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("%{escaped}%")
}

/// How many people, in name order, a search reads before it turns to the trigram index.
const SEARCH_WINDOW: i64 = 4096;

/// How deep a reporting line is followed: deeper than any organisation, and a bound on a cycle made by hand.
const MAX_LINE_DEPTH: i64 = 64;

impl SqlStore {
    /// `n` fresh ids for `table`'s identity column, taken inside the import's transaction: PostgreSQL's
    /// sequence hands them out (safe beside other writers); on SQLite the transaction holds the write lock,
    /// so the ids after the highest ever used (AUTOINCREMENT's own record) are free.
    async fn reserve_ids(
        &self,
        conn: &mut sqlx::AnyConnection,
        table: &'static str,
        column: &'static str,
        n: usize,
    ) -> StoreResult<Vec<i64>> {
        match self.backend {
            Backend::Postgres => {
                let sql = format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) AS id FROM generate_series(1, $1)"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(n as i64).fetch_all(&mut *conn).await.db()?;
                rows.iter().map(|r| r.try_get::<i64, _>("id").db()).collect()
            }
            Backend::Sqlite => {
                let sql = format!(
                    "SELECT MAX(COALESCE((SELECT MAX({column}) FROM {table}), 0), \
                     COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0)) AS id"
                );
                let last: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await.db()?;
                Ok((1..=n as i64).map(|i| last + i).collect())
            }
        }
    }

    /// The ids and sort keys of the first `limit` people after `after` whose search text contains `text`, in
    /// name order. SQLite: [`Self::search_in_order`]. PostgreSQL: a common text is found among the first
    /// [`SEARCH_WINDOW`] people in order (an index read in order, one `LIKE` per row: at most a few milliseconds
    /// whatever the directory's size); when that window holds too few, the trigram index finds every match,
    /// which are sorted.
    async fn search_ids(
        &self,
        text: &str,
        pattern: &str,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> StoreResult<Vec<(PersonId, String)>> {
        if self.backend == Backend::Sqlite {
            return self.search_in_order(text, pattern, after, limit).await;
        }
        let (key, id) = after.map(|(k, id)| (k, id.0)).unwrap_or(("", 0));
        let ids = |rows: Vec<sqlx::any::AnyRow>| {
            rows.iter()
                .map(|r| Ok((PersonId(r.try_get("person_id").db()?), r.try_get("sort_key").db()?)))
                .collect::<StoreResult<Vec<_>>>()
        };
        let window = format!(
            "SELECT person_id, sort_key, haystack FROM person_search WHERE (sort_key, person_id) > ($1, $2) \
             ORDER BY sort_key, person_id LIMIT {SEARCH_WINDOW}"
        );
        let found = ids(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, sort_key FROM ({window}) w WHERE haystack LIKE $3 ESCAPE '\\' \
             ORDER BY sort_key, person_id LIMIT $4"
        )))
        .bind(key)
        .bind(id)
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?)?;
        if found.len() as i64 >= limit {
            return Ok(found);
        }
        let seen: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM ({window}) w")))
            .bind(key)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .db()?;
        if seen < SEARCH_WINDOW {
            return Ok(found); // the window held everyone after the cursor
        }
        // Rare text (PostgreSQL): every match, from the `pg_trgm` index (three characters at least; shorter
        // text is read from the table), then in order. PostgreSQL's planner, given `ORDER BY sort_key`, walks the
        // name-order index and filters, expecting a page early: for text common elsewhere but not near the cursor
        // (a given name at 1M: 18,500 people three quarters of the way down) that read 750,000 rows, 852 ms.
        // Ordering by an expression it has no index for makes it take the trigram index and sort the matches
        // (top-N): 23 ms for the same query.
        let order = if text.chars().count() >= 3 { "sort_key || ''" } else { "sort_key" };
        let sql = format!(
            "SELECT person_id, sort_key FROM person_search WHERE haystack LIKE $3 ESCAPE '\\' \
             AND (sort_key, person_id) > ($1, $2) ORDER BY {order}, person_id LIMIT $4"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).bind(id).bind(pattern).bind(limit);
        ids(query.fetch_all(&self.pool).await.db()?)
    }

    /// SQLite's search (migration 0015): the trigram index is keyed by name order, so it hands matches back in
    /// that order from the cursor on and a page is read, not sorted out of every match. Text shorter than a
    /// trigram reads the table in name order.
    async fn search_in_order(
        &self,
        text: &str,
        pattern: &str,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> StoreResult<Vec<(PersonId, String)>> {
        // One read transaction for the cursor's lookup and every batch: one snapshot, so a stretch spread out
        // or a renumbering committed meanwhile cannot make the numbers skip or repeat anyone.
        let mut tx = self.pool.begin().await.db()?;
        // Where the previous page ended: the number of the last row at or before its cursor (the person there
        // may have gone since).
        let mut from: i64 = match after {
            None => 0,
            Some((key, id)) => sqlx::query_scalar(
                "SELECT ord FROM person_search WHERE (sort_key, person_id) <= ($1, $2) AND ord IS NOT NULL \
                 ORDER BY sort_key DESC, person_id DESC LIMIT 1",
            )
            .bind(key)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .db()?
            .unwrap_or(0),
        };
        let mut found = Vec::new();
        if text.chars().count() < 3 {
            let rows = sqlx::query(
                "SELECT person_id, sort_key FROM person_search WHERE ord > $1 AND haystack LIKE $2 ESCAPE '\\' \
                 ORDER BY ord LIMIT $3",
            )
            .bind(from)
            .bind(pattern)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .db()?;
            for r in rows {
                found.push((PersonId(r.try_get("person_id").db()?), r.try_get("sort_key").db()?));
            }
            tx.commit().await.db()?;
            return Ok(found);
        }
        // The trigram phrase matches the text anywhere; the LIKE is the definition the other backend shares
        // (`%` and `_` literal), so candidates are read in batches until a page is full or none are left.
        let phrase = format!("\"{}\"", text.to_lowercase().replace('"', "\"\""));
        let batch = (limit * 2).max(64);
        loop {
            let rows = sqlx::query(
                "SELECT person_id, sort_key, ord, haystack LIKE $1 ESCAPE '\\' AS hit FROM person_search \
                 WHERE ord IN (SELECT rowid FROM person_search_trigrams WHERE person_search_trigrams MATCH $2 \
                     AND rowid > $3 ORDER BY rowid LIMIT $4) \
                 ORDER BY ord",
            )
            .bind(pattern)
            .bind(&phrase)
            .bind(from)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .db()?;
            let complete = (rows.len() as i64) < batch;
            for r in rows {
                from = r.try_get("ord").db()?;
                if flag(&r, "hit").db()? {
                    found.push((PersonId(r.try_get("person_id").db()?), r.try_get("sort_key").db()?));
                    if found.len() as i64 >= limit {
                        tx.commit().await.db()?;
                        return Ok(found);
                    }
                }
            }
            if complete {
                tx.commit().await.db()?;
                return Ok(found);
            }
        }
    }

    /// The search hits for `ids` (in that order), with their grants and accounts: three queries, whatever
    /// the page's length.
    async fn hits_of(&self, ids: &[(PersonId, String)]) -> StoreResult<Vec<PersonHit>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(|(id, _)| id.0.to_string()).collect::<Vec<_>>().join(", ");
        let people = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS}, COALESCE(g.dpa_level, 0) AS dpa_level, COALESCE(g.expert_mode, 0) AS expert_mode, \
                 COALESCE(g.auditor, 0) AS auditor, COALESCE(g.directory_admin, 0) AS directory_admin, \
                 lower(display_name) AS sort_key \
             FROM person LEFT JOIN permission_grant g USING (person_id) WHERE person_id IN ({list})"
        )))
        .fetch_all(&self.pool)
        .await
        .db()?;
        let mut hits = self.hits(&people).await?;
        // In the order the search found them; the sort key is the search table's (the order the cursor follows).
        let order: std::collections::HashMap<i64, (usize, &String)> =
            ids.iter().enumerate().map(|(n, (id, key))| (id.0, (n, key))).collect();
        hits.retain(|h| order.contains_key(&h.person.id.0));
        hits.sort_by_key(|h| order.get(&h.person.id.0).map(|(n, _)| *n));
        for h in &mut hits {
            if let Some((_, key)) = order.get(&h.person.id.0) {
                h.sort_key = (*key).clone();
            }
        }
        Ok(hits)
    }

    /// Search hits for person rows (with their grant columns and `sort_key`): every account of every person
    /// in one query.
    async fn hits(&self, people: &[sqlx::any::AnyRow]) -> StoreResult<Vec<PersonHit>> {
        if people.is_empty() {
            return Ok(Vec::new());
        }
        let mut persons = Vec::with_capacity(people.len());
        for row in people {
            persons.push(person_from_row(row)?);
        }
        // Ids are integers this store read: no text reaches the SQL.
        let list = persons.iter().map(|p| p.id.0.to_string()).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS}, (SELECT COUNT(*) FROM totp_credential t WHERE t.account_id = account.account_id \
             AND t.confirmed_at IS NOT NULL) AS totp, \
             (SELECT COUNT(*) FROM passkey pk WHERE pk.account_id = account.account_id) AS passkeys \
             FROM account WHERE person_id IN ({list}) ORDER BY account_id"
        )))
        .fetch_all(&self.pool)
        .await
        .db()?;
        let mut accounts: std::collections::HashMap<i64, Vec<AccountHit>> = std::collections::HashMap::new();
        for r in &rows {
            let account = account_from_row(r)?;
            accounts.entry(account.person_id.0).or_default().push(AccountHit {
                account,
                has_totp: count(r, "totp").db()? > 0,
                passkeys: count(r, "passkeys").db()?,
            });
        }
        let mut hits = Vec::with_capacity(people.len());
        for (row, person) in people.iter().zip(persons) {
            let sort_key = row.try_get("sort_key").db()?;
            let accounts = accounts.remove(&person.id.0).unwrap_or_default();
            hits.push(PersonHit { person, accounts, grant: grant_from_row(row)?, sort_key });
        }
        Ok(hits)
    }
}
