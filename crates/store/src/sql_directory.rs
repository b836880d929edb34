//! People, accounts and grants on the SQL backends.

use super::sql::*;
use super::*;
use sqlx::Row;

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn create_person(
        &self,
        new: &NewPerson,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<(Person, Account)> {
        let mut tx = self.pool.begin().await.db()?;
        let created = insert_person(&mut tx, self.audit_key()?, new, now, audit).await?;
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
        let mut tx = self.pool.begin().await.db()?;
        for (i, row) in rows.iter().enumerate() {
            insert_person(&mut tx, self.audit_key()?, row, now, audit).await?;
            progress(i + 1);
        }
        tx.commit().await.db()?;
        Ok(rows.len())
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
    /// The people of these rows (a person's columns, their grant and `sort_key`), each with their accounts.
    /// The ids and sort keys of the first `limit` people after `after` whose search text contains `text`, in
    /// name order. A common text is found among the first [`SEARCH_WINDOW`] people in order (an index read in
    /// order, one `LIKE` per row: at most a few milliseconds whatever the directory's size); when that window
    /// holds too few, the text is rare, and the trigram index finds every match, few enough to sort.
    async fn search_ids(
        &self,
        text: &str,
        pattern: &str,
        after: Option<(&str, PersonId)>,
        limit: i64,
    ) -> StoreResult<Vec<(PersonId, String)>> {
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
        // Rare text: every match, from the trigram index (three characters at least; shorter text is read
        // from the table), then in order.
        let trigrams = text.chars().count() >= 3;
        let candidates = match self.backend {
            Backend::Sqlite if trigrams => {
                "SELECT person_id, sort_key, haystack FROM person_search WHERE person_id IN \
                 (SELECT rowid FROM person_search_trigrams WHERE person_search_trigrams MATCH $5)"
            }
            // PostgreSQL's planner takes the trigram index for a rare text (and a scan for a common one).
            _ => "SELECT person_id, sort_key, haystack FROM person_search",
        };
        let phrase = format!("\"{}\"", text.to_lowercase().replace('"', "\"\""));
        let sql = format!(
            "SELECT person_id, sort_key FROM ({candidates}) m WHERE haystack LIKE $3 ESCAPE '\\' \
             AND (sort_key, person_id) > ($1, $2) ORDER BY sort_key, person_id LIMIT $4"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).bind(id).bind(pattern).bind(limit);
        if self.backend == Backend::Sqlite && trigrams {
            query = query.bind(phrase);
        }
        ids(query.fetch_all(&self.pool).await.db()?)
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
             AND t.confirmed_at IS NOT NULL) AS totp FROM account WHERE person_id IN ({list}) ORDER BY account_id"
        )))
        .fetch_all(&self.pool)
        .await
        .db()?;
        let mut accounts: std::collections::HashMap<i64, Vec<AccountHit>> = std::collections::HashMap::new();
        for r in &rows {
            let account = account_from_row(r)?;
            accounts
                .entry(account.person_id.0)
                .or_default()
                .push(AccountHit { account, has_totp: count(r, "totp").db()? > 0 });
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
