use super::*;
use crate::audit::{self, Actor};
use crate::domain::LockReason;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Row};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store, on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

const ACCOUNT_COLUMNS: &str = "account_id, person_id, username, source, password_hash, password_changed_at, \
    failed_attempts, lock_count, locked_at, lock_reason, locked_until, unlocked_by, unlocked_at, \
    require_change_password, require_enroll_mfa, qa_failed_attempts, qa_locked_at, created_at";

const PERSON_COLUMNS: &str = "person_id, display_name, email, phone, manager_id, department, status, created_at";

impl SqlStore {
    /// Connect (creating an SQLite file if needed). Migrations are a separate step: [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            // WAL lets readers work while one writer commits. Set once, on a lone connection: the pragma
            // needs an exclusive lock that a busy pool could not give it.
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await?;
            conn.close().await?;
            (url, Backend::Sqlite)
        } else {
            (url.to_owned(), Backend::Postgres)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .connect(&url)
            .await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn migrate(&self) -> StoreResult<Vec<String>> {
        super::migrate::run(&self.pool, self.backend).await
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

pub(super) fn count(row: &AnyRow, col: &str) -> Result<u32, sqlx::Error> {
    Ok(u32::try_from(row.try_get::<i64, _>(col)?).unwrap_or(u32::MAX))
}

fn person_from_row(row: &AnyRow) -> StoreResult<Person> {
    let email: String = row.try_get("email")?;
    let status: String = row.try_get("status")?;
    Ok(Person {
        id: row.try_get("person_id")?,
        display_name: row.try_get("display_name")?,
        email: EmailAddress::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        phone: row.try_get("phone")?,
        manager_id: row.try_get("manager_id")?,
        department: row.try_get("department")?,
        status: PersonStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: row.try_get("created_at")?,
    })
}

fn account_from_row(row: &AnyRow) -> StoreResult<Account> {
    let source: String = row.try_get("source")?;
    let reason: Option<String> = row.try_get("lock_reason")?;
    Ok(Account {
        id: row.try_get("account_id")?,
        person_id: row.try_get("person_id")?,
        username: row.try_get("username")?,
        source: AccountSource::from_str(&source).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: row.try_get("password_hash")?,
        password_changed_at: row.try_get("password_changed_at")?,
        failed_attempts: count(row, "failed_attempts")?,
        lock_count: count(row, "lock_count")?,
        locked_at: row.try_get("locked_at")?,
        lock_reason: reason
            .map(|r| LockReason::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        locked_until: row.try_get("locked_until")?,
        unlocked_by: row.try_get("unlocked_by")?,
        unlocked_at: row.try_get("unlocked_at")?,
        required: crate::domain::RequiredActions {
            change_password: flag(row, "require_change_password")?,
            enroll_mfa: flag(row, "require_enroll_mfa")?,
        },
        qa_failed_attempts: count(row, "qa_failed_attempts")?,
        qa_locked_at: row.try_get("qa_locked_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn unique_violation(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what.to_owned()),
        _ => StoreError::Database(e),
    }
}

async fn insert_person(
    conn: &mut sqlx::AnyConnection,
    new: &NewPerson,
    now: Timestamp,
    audit: &AuditEntry,
) -> StoreResult<(Person, Account)> {
    let manager_id: Option<i64> = match &new.manager_email {
        None => None,
        Some(email) => Some(
            sqlx::query("SELECT person_id FROM person WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("manager {email} is not in the directory")))?,
        ),
    };
    let row = sqlx::query(&format!(
        "INSERT INTO person (display_name, email, phone, manager_id, department, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {PERSON_COLUMNS}"
    ))
    .bind(new.display_name.as_str())
    .bind(new.email.as_str())
    .bind(new.phone.as_deref())
    .bind(manager_id)
    .bind(new.department.as_deref())
    .bind(new.status.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, &format!("a person with email {} already exists", new.email)))?;
    let person = person_from_row(&row)?;
    let row = sqlx::query(&format!(
        "INSERT INTO account (person_id, username, source, password_hash, password_changed_at, require_change_password, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(person.id)
    .bind(new.username.as_str())
    .bind(new.source.as_str())
    .bind(new.password_hash.as_deref())
    .bind(new.password_hash.as_ref().map(|_| now))
    .bind(i64::from(new.require_change_password))
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, &format!("the username {} is already taken", new.username)))?;
    let account = account_from_row(&row)?;
    write_grant(&mut *conn, person.id, &new.grant, "system", now).await?;
    if new.password_hash.is_some() {
        history(&mut *conn, account.id, "password", "bound", now).await?;
    }
    let mut entry = audit.clone();
    entry.subject_person_id = Some(person.id);
    entry.subject_account_id = Some(account.id);
    append(conn, &entry).await?;
    Ok((person, account))
}

async fn write_grant(
    conn: &mut sqlx::AnyConnection,
    person: PersonId,
    g: &Grant,
    by: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO permission_grant (person_id, dpa_level, expert_mode, auditor, directory_admin, granted_at, granted_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (person_id) DO UPDATE SET dpa_level = excluded.dpa_level, expert_mode = excluded.expert_mode, \
         auditor = excluded.auditor, directory_admin = excluded.directory_admin, granted_at = excluded.granted_at, \
         granted_by = excluded.granted_by",
    )
    .bind(person)
    .bind(i64::from(g.dpa_level))
    .bind(i64::from(g.expert_mode))
    .bind(i64::from(g.auditor))
    .bind(i64::from(g.directory_admin))
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn history(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    kind: &str,
    change: &str,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO authenticator_history (account_id, kind, change, at) VALUES ($1, $2, $3, $4)")
        .bind(account)
        .bind(kind)
        .bind(change)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Append one audit row inside the caller's transaction. Updating the head first takes its lock, so
/// concurrent appenders (threads or instances) queue here and the chain stays one line.
/// Record a sign-in attempt and its audit row inside the caller's transaction.
async fn insert_sign_in(conn: &mut sqlx::AnyConnection, e: &SignInEvent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sign_in_event (account_id, at, outcome, method, client_ip, city, country, asn, network, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.account_id)
    .bind(e.at)
    .bind(&e.outcome)
    .bind(&e.method)
    .bind(&e.client_ip)
    .bind(e.city.as_deref())
    .bind(e.country.as_deref())
    .bind(e.asn.map(i64::from))
    .bind(&e.network)
    .bind(&e.user_agent)
    .execute(&mut *conn)
    .await?;
    let details = serde_json::json!({
        "method": e.method, "city": e.city, "country": e.country, "network": e.network, "user_agent": e.user_agent,
    });
    let mut entry = AuditEntry::new(e.at, &Actor::Public, "sign_in", &e.outcome)
        .ip(e.client_ip.clone())
        .details(details.to_string());
    entry.subject_account_id = e.account_id;
    append(conn, &entry).await?;
    Ok(())
}

pub(super) async fn append(conn: &mut sqlx::AnyConnection, entry: &AuditEntry) -> StoreResult<i64> {
    let head =
        sqlx::query("UPDATE audit_head SET last_id = last_id + 1 WHERE audit_head_id = 1 RETURNING last_id, last_hash")
            .fetch_one(&mut *conn)
            .await?;
    let id: i64 = head.try_get("last_id")?;
    let prev_hash: String = head.try_get("last_hash")?;
    let hash = audit::hash(id, entry, &prev_hash);
    sqlx::query(
        "INSERT INTO audit_event (audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, \
         reason, details, client_ip, outcome, reference, notified, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(id)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(entry.on_behalf_of.as_deref())
    .bind(&entry.action)
    .bind(entry.subject_person_id)
    .bind(entry.subject_account_id)
    .bind(entry.reason.as_deref())
    .bind(entry.details.as_deref())
    .bind(entry.client_ip.as_deref())
    .bind(&entry.outcome)
    .bind(entry.reference.as_deref())
    .bind(entry.notified.as_deref())
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE audit_head_id = 1").bind(&hash).execute(&mut *conn).await?;
    Ok(id)
}

async fn insert_backup_codes(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    codes: &[TokenHash],
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_code WHERE account_id = $1").bind(account).execute(&mut *conn).await?;
    for code in codes {
        sqlx::query("INSERT INTO backup_code (account_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(&code.0)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    history(conn, account, "backup_codes", if codes.is_empty() { "removed" } else { "bound" }, now).await
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn create_person(
        &self,
        new: &NewPerson,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<(Person, Account)> {
        let mut tx = self.pool.begin().await?;
        let created = insert_person(&mut tx, new, now, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn import_people(
        &self,
        rows: &[NewPerson],
        now: Timestamp,
        audit: &AuditEntry,
        progress: &(dyn Fn(usize) + Sync),
    ) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await?;
        for (i, row) in rows.iter().enumerate() {
            insert_person(&mut tx, row, now, audit).await?;
            progress(i + 1);
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn person(&self, id: PersonId) -> StoreResult<Option<Person>> {
        let row = sqlx::query(&format!("SELECT {PERSON_COLUMNS} FROM person WHERE person_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn person_by_email(&self, email: &EmailAddress) -> StoreResult<Option<Person>> {
        let row = sqlx::query(&format!("SELECT {PERSON_COLUMNS} FROM person WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn accounts_of(&self, person: PersonId) -> StoreResult<Vec<Account>> {
        let rows =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE person_id = $1 ORDER BY account_id"))
                .bind(person)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE account_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>> {
        let login = login.trim().to_lowercase();
        let by_username = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE username = $1"))
            .bind(&login)
            .fetch_optional(&self.pool)
            .await?;
        let row = match by_username {
            Some(row) => Some(row),
            None => {
                sqlx::query(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account WHERE source <> 'sso' AND person_id = \
                     (SELECT person_id FROM person WHERE email = $1) ORDER BY account_id LIMIT 1"
                ))
                .bind(&login)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.as_ref().map(account_from_row).transpose()
    }

    async fn grant(&self, person: PersonId) -> StoreResult<Grant> {
        let row = sqlx::query(
            "SELECT dpa_level, expert_mode, auditor, directory_admin FROM permission_grant WHERE person_id = $1",
        )
        .bind(person)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(Grant::default()) };
        Ok(Grant {
            dpa_level: u8::try_from(row.try_get::<i64, _>("dpa_level")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            expert_mode: flag(&row, "expert_mode")?,
            auditor: flag(&row, "auditor")?,
            directory_admin: flag(&row, "directory_admin")?,
        })
    }

    async fn set_grant(&self, person: PersonId, grant: &Grant, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        write_grant(&mut tx, person, grant, &audit.actor, audit.at).await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_people(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM person").fetch_one(&self.pool).await?.try_get("n")?)
    }

    async fn count_directory_admins(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM permission_grant WHERE directory_admin = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn set_password(
        &self,
        account: AccountId,
        hash: &str,
        require_change: bool,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = $3 WHERE account_id = $4")
            .bind(hash)
            .bind(now)
            .bind(i64::from(require_change))
            .bind(account)
            .execute(&mut *tx)
            .await?;
        history(&mut tx, account, "password", "bound", now).await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        account: AccountId,
        policy: &LockoutPolicy,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<FailureResult> {
        let mut tx = self.pool.begin().await?;
        // The increment comes first: it takes the row's write lock, so concurrent failures serialise here.
        // Failures while a lock is in force are not counted (the count says how many it took to lock).
        // A temporary lock that has run out is cleared by the same statement and the count starts again,
        // so the next run of failures locks again (for longer: `lock_count` is kept).
        let row = sqlx::query(
            "UPDATE account SET \
               failed_attempts = CASE WHEN locked_until <= $2 THEN 1 \
                                      WHEN locked_at IS NOT NULL THEN failed_attempts \
                                      ELSE failed_attempts + 1 END, \
               locked_at = CASE WHEN locked_until <= $2 THEN NULL ELSE locked_at END, \
               lock_reason = CASE WHEN locked_until <= $2 THEN NULL ELSE lock_reason END, \
               locked_until = CASE WHEN locked_until <= $2 THEN NULL ELSE locked_until END \
             WHERE account_id = $1 RETURNING failed_attempts, lock_count, locked_at, person_id",
        )
        .bind(account)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let failed_attempts = count(&row, "failed_attempts")?;
        let already_locked: Option<i64> = row.try_get("locked_at")?;
        let mut locked_now = false;
        if already_locked.is_none()
            && let Some(lock) = policy.after_failure(failed_attempts, count(&row, "lock_count")?, now)
        {
            sqlx::query(
                "UPDATE account SET locked_at = $1, locked_until = $2, lock_reason = 'failures', \
                 lock_count = lock_count + 1 WHERE account_id = $3 AND locked_at IS NULL",
            )
            .bind(lock.locked_at)
            .bind(lock.locked_until)
            .bind(account)
            .execute(&mut *tx)
            .await?;
            let entry = AuditEntry::new(now, &Actor::Public, "account.lock", "locked")
                .person(row.try_get("person_id")?)
                .account(account)
                .reason("failures")
                .details(format!("{failed_attempts} consecutive failed sign-in attempts"));
            append(&mut tx, &entry).await?;
            locked_now = true;
        }
        insert_sign_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(FailureResult { failed_attempts, locked_now })
    }

    async fn reset_failures(&self, account: AccountId) -> StoreResult<()> {
        // An expired temporary lock is cleared with the counter; the consecutive-lock count starts again.
        sqlx::query(
            "UPDATE account SET failed_attempts = 0, lock_count = 0, \
             locked_at = CASE WHEN locked_until IS NULL THEN locked_at ELSE NULL END, \
             lock_reason = CASE WHEN locked_until IS NULL THEN lock_reason ELSE NULL END, \
             locked_until = NULL WHERE account_id = $1",
        )
        .bind(account)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn totp(&self, account: AccountId) -> StoreResult<Option<TotpRecord>> {
        let row = sqlx::query(
            "SELECT secret_ciphertext, confirmed_at, last_used_step FROM totp_credential WHERE account_id = $1",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpRecord {
            sealed_secret: row.try_get("secret_ciphertext")?,
            confirmed_at: row.try_get("confirmed_at")?,
            last_used_step: row.try_get("last_used_step")?,
        }))
    }

    async fn begin_totp_enrolment(&self, account: AccountId, sealed_secret: &[u8], now: Timestamp) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM totp_credential WHERE account_id = $1 AND confirmed_at IS NULL")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO totp_credential (account_id, secret_ciphertext, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account)
        .bind(sealed_secret.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn confirm_totp(
        &self,
        account: AccountId,
        step: i64,
        backup_codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE totp_credential SET confirmed_at = $1, last_used_step = $2 WHERE account_id = $3 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(step)
        .bind(account)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        history(&mut tx, account, "totp", "bound", now).await?;
        insert_backup_codes(&mut tx, account, backup_codes, now).await?;
        sqlx::query("UPDATE account SET require_enroll_mfa = 0 WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn use_totp_step(&self, account: AccountId, step: i64, event: &SignInEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE totp_credential SET last_used_step = $1 \
             WHERE account_id = $2 AND confirmed_at IS NOT NULL AND last_used_step < $1",
        )
        .bind(step)
        .bind(account)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if used {
            insert_sign_in(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(used)
    }

    async fn replace_backup_codes(
        &self,
        account: AccountId,
        codes: &[TokenHash],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_backup_codes(&mut tx, account, codes, now).await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn consume_backup_code(
        &self,
        account: AccountId,
        code: &TokenHash,
        now: Timestamp,
        event: &SignInEvent,
    ) -> StoreResult<bool> {
        // The lookup is by the keyed hash, so no secret is compared here at all; `used_at IS NULL` in the
        // same statement makes the consumption atomic, and its sign-in event commits with it.
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE backup_code SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(account)
        .bind(&code.0)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if used {
            insert_sign_in(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(used)
    }

    async fn unused_backup_codes(&self, account: AccountId) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM backup_code WHERE account_id = $1 AND used_at IS NULL")
            .bind(account)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    async fn set_qa_answers(
        &self,
        account: AccountId,
        answer_hashes: &[String],
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM qa_answer WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        for (i, hash) in answer_hashes.iter().enumerate() {
            sqlx::query(
                "INSERT INTO qa_answer (account_id, question_index, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(account)
            .bind(i as i64)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        history(
            &mut tx,
            account,
            "security_questions",
            if answer_hashes.is_empty() { "removed" } else { "bound" },
            now,
        )
        .await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn qa_answers(&self, account: AccountId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT answer_hash FROM qa_answer WHERE account_id = $1 ORDER BY question_index")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    async fn record_qa_failure(&self, account: AccountId, policy: &LockoutPolicy, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE account SET qa_failed_attempts = qa_failed_attempts + 1, \
             qa_locked_at = CASE WHEN qa_locked_at IS NULL AND qa_failed_attempts + 1 >= $1 THEN $2 ELSE qa_locked_at END \
             WHERE account_id = $3 RETURNING qa_failed_attempts, qa_locked_at, person_id",
        )
        .bind(i64::from(policy.qa_failed_attempts_before_lock))
        .bind(now)
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
        let locked_at: Option<i64> = row.try_get("qa_locked_at")?;
        let locked_now =
            locked_at == Some(now) && count(&row, "qa_failed_attempts")? == policy.qa_failed_attempts_before_lock;
        if locked_now {
            let entry = AuditEntry::new(now, &Actor::Public, "qa.lock", "locked")
                .person(row.try_get("person_id")?)
                .account(account)
                .reason("qa_failures");
            append(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(locked_now)
    }

    async fn reset_password_by_qa(
        &self,
        account: AccountId,
        hash: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = 0, \
             qa_failed_attempts = 0 WHERE account_id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(account)
        .execute(&mut *tx)
        .await?;
        history(&mut tx, account, "password", "bound", now).await?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lock_account(
        &self,
        account: AccountId,
        reason: LockReason,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE account SET locked_at = $1, lock_reason = $2, locked_until = NULL WHERE account_id = $3")
            .bind(now)
            .bind(reason.as_str())
            .bind(account)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM web_session WHERE account_id = $1").bind(account).execute(&mut *tx).await?;
        append(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(
        &self,
        token: &TokenHash,
        account: AccountId,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO web_session (token_hash, account_id, stage, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&token.0)
            .bind(account)
            .bind(stage.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(&self, token: &TokenHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT account_id, stage, expires_at FROM web_session WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(&token.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stage: String = row.try_get("stage")?;
        Ok(Some(SessionRecord {
            account_id: row.try_get("account_id")?,
            stage: SessionStage::parse(&stage)
                .ok_or_else(|| StoreError::Corrupt(format!("session stage {stage:?}")))?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn advance_session(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        stage: SessionStage,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE web_session SET token_hash = $1, stage = $2, expires_at = $3 WHERE token_hash = $4 AND expires_at > $5",
        )
        .bind(&new.0)
        .bind(stage.as_str())
        .bind(expires_at)
        .bind(&old.0)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_session(&self, token: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_session WHERE token_hash = $1").bind(&token.0).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let result =
            sqlx::query("DELETE FROM web_session WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        Ok(result.rows_affected())
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn record_sign_in(&self, e: &SignInEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_sign_in(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recent_sign_ins(&self, account: AccountId, limit: i64) -> StoreResult<Vec<SignInEvent>> {
        let rows = sqlx::query(
            "SELECT account_id, at, outcome, method, client_ip, city, country, asn, network, user_agent FROM sign_in_event \
             WHERE account_id = $1 ORDER BY at DESC, sign_in_event_id DESC LIMIT $2",
        )
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SignInEvent {
                    account_id: r.try_get("account_id")?,
                    at: r.try_get("at")?,
                    outcome: r.try_get("outcome")?,
                    method: r.try_get("method")?,
                    client_ip: r.try_get("client_ip")?,
                    city: r.try_get("city")?,
                    country: r.try_get("country")?,
                    asn: r.try_get::<Option<i64>, _>("asn")?.and_then(|a| u32::try_from(a).ok()),
                    network: r.try_get("network")?,
                    user_agent: r.try_get("user_agent")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let id = append(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn audit_records(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, reason, details, \
             client_ip, outcome, reference, notified, prev_hash, hash FROM audit_event \
             WHERE audit_event_id > $1 ORDER BY audit_event_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("audit_event_id")?,
                    entry: AuditEntry {
                        at: r.try_get("at")?,
                        actor: r.try_get("actor")?,
                        on_behalf_of: r.try_get("on_behalf_of")?,
                        action: r.try_get("action")?,
                        subject_person_id: r.try_get("subject_person_id")?,
                        subject_account_id: r.try_get("subject_account_id")?,
                        reason: r.try_get("reason")?,
                        details: r.try_get("details")?,
                        client_ip: r.try_get("client_ip")?,
                        outcome: r.try_get("outcome")?,
                        reference: r.try_get("reference")?,
                        notified: r.try_get("notified")?,
                    },
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let row = sqlx::query("SELECT last_id, last_hash FROM audit_head WHERE audit_head_id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("last_id")?, row.try_get("last_hash")?))
    }
}
