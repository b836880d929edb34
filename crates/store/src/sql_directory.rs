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

/// How deep a reporting line is followed: deeper than any organisation, and a bound on a cycle made by hand.
const MAX_LINE_DEPTH: i64 = 64;

impl SqlStore {
    /// The people of these rows (a person's columns, their grant and `sort_key`), each with their accounts.
    async fn hits(&self, people: &[sqlx::any::AnyRow]) -> StoreResult<Vec<PersonHit>> {
        let mut hits = Vec::with_capacity(people.len());
        for row in people {
            let person = person_from_row(row)?;
            let accounts = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS}, (SELECT COUNT(*) FROM totp_credential t WHERE t.account_id = account.account_id \
                 AND t.confirmed_at IS NOT NULL) AS totp FROM account WHERE person_id = $1 ORDER BY account_id"
            )))
            .bind(person.id.0)
            .fetch_all(&self.pool)
            .await
            .db()?
            .iter()
            .map(|r| Ok(AccountHit { account: account_from_row(r)?, has_totp: count(r, "totp").db()? > 0 }))
            .collect::<StoreResult<Vec<_>>>()?;
            let sort_key = row.try_get("sort_key").db()?;
            hits.push(PersonHit { person, accounts, grant: grant_from_row(row)?, sort_key });
        }
        Ok(hits)
    }
}
