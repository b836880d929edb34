pub(super) use super::sql_audit::append;
use super::*;
use crate::audit::{Actor, AuditKey};
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
    pub(super) pool: AnyPool,
    pub(super) backend: Backend,
    /// SQLite's one writer, taken in this process before a write transaction begins: writers queue here, in
    /// order, instead of in SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between tries (a 180 ms p99
    /// for assistance intake under load). Other processes still meet the busy timeout.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Seals audit rows. Only the commands that write audit rows need it (not `migrate` or `copy-db`).
    audit_key: Option<AuditKey>,
}

pub(super) const ACCOUNT_COLUMNS: &str = "account_id, person_id, username, source, password_hash, password_changed_at, \
    failed_attempts, lock_count, locked_at, lock_reason, locked_until, unlocked_by, unlocked_at, \
    require_change_password, require_enroll_mfa, require_device_authorization, qa_failed_attempts, qa_locked_at, created_at, last_failed_at, \
    temporary_password_until";

pub(super) const PERSON_COLUMNS: &str =
    "person_id, display_name, email, phone, manager_id, department, status, created_at";

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
            let mut conn = sqlx::AnyConnection::connect(&url).await.db()?;
            // Wait for another process's lock (instances starting together, one migrating) rather than fail.
            sqlx::query("PRAGMA busy_timeout = 30000").execute(&mut conn).await.db()?;
            sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await.db()?;
            conn.close().await.db()?;
            (url, Backend::Sqlite)
        } else {
            (url.to_owned(), Backend::Postgres)
        };
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 8 } else { 16 })
            // SQLite has one writer: another process (a CLI command beside a running server, a second
            // instance) waits for it up to 30 s instead of failing with "database is locked" on a busy machine.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA busy_timeout = 30000").execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .db()?;
        Ok(Self { pool, backend, writer: Default::default(), audit_key: None })
    }

    /// The key that seals audit rows; without it the store reads the log but cannot append to it.
    pub fn with_audit_key(mut self, key: AuditKey) -> Self {
        self.audit_key = Some(key);
        self
    }

    pub(super) fn audit_key(&self) -> StoreResult<&AuditKey> {
        self.audit_key.as_ref().ok_or(StoreError::NoAuditKey)
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

/// One audited change: a transaction that ends by writing the change's audit row — and the emails the change
/// causes — and committing, all or nothing ("begin → change → audit row → outbox rows → commit", written once).
/// The audit key is asked for before anything changes, so a store opened without it refuses at once. Dropped
/// without a commit, it rolls back.
pub(crate) struct Audited<'k> {
    tx: WriteTx,
    key: &'k AuditKey,
}

impl SqlStore {
    pub(crate) async fn audited(&self) -> StoreResult<Audited<'_>> {
        let key = self.audit_key()?;
        Ok(Audited { tx: self.begin_write().await?, key })
    }

    /// Wait for this process's turn to write (SQLite; PostgreSQL locks rows, and needs no turn).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// A transaction that writes, begun in this process's turn to write.
    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx> {
        let turn = self.write_turn().await;
        Ok(WriteTx { tx: self.pool.begin().await.db()?, _turn: turn })
    }
}

/// A write transaction and the turn it holds until it ends (the transaction is dropped first: declared first).
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl std::ops::Deref for Audited<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for Audited<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl<'k> Audited<'k> {
    /// The audit key, for writes that seal rows of their own (sign-in events).
    pub(crate) fn key(&self) -> &'k AuditKey {
        self.key
    }

    /// Undo everything written (a check inside the transaction failed).
    pub(crate) async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await.db()
    }

    /// An audit row for part of the change (a change that may write several, or none).
    pub(crate) async fn audit(&mut self, entry: &AuditEntry) -> StoreResult<i64> {
        append(&mut self.tx, self.key, entry).await
    }

    /// Commit what was written, with the audit rows already added by [`Audited::audit`].
    pub(crate) async fn finish(self) -> StoreResult<()> {
        self.tx.commit().await.db()
    }

    /// Write the change's audit row and commit; returns the row's id.
    pub(crate) async fn commit(self, entry: &AuditEntry) -> StoreResult<i64> {
        self.commit_with_emails(entry, &[], 0).await
    }

    /// Queue the change's emails, write its audit row and commit; returns the row's id.
    pub(crate) async fn commit_with_emails(
        mut self,
        entry: &AuditEntry,
        emails: &[crate::email::OutgoingEmail],
        now: Timestamp,
    ) -> StoreResult<i64> {
        for email in emails {
            super::sql_outbox::enqueue(&mut self.tx, email, now).await?;
        }
        let id = append(&mut self.tx, self.key, entry).await?;
        self.tx.commit().await.db()?;
        Ok(id)
    }

    /// Store the notices' secrets, queue their emails, write the audit row (naming who was emailed, unless the
    /// caller did) and commit.
    pub(crate) async fn commit_with_notices(
        mut self,
        audit: &AuditEntry,
        notices: &Notices,
        now: Timestamp,
    ) -> StoreResult<i64> {
        for secret in &notices.secrets {
            super::sql_recovery::insert_secret(&mut self.tx, secret, now).await?;
        }
        let mut audit = audit.clone();
        if audit.notified.is_none() && !notices.emails.is_empty() {
            audit.notified = Some(notices.emails.iter().map(|e| e.to.as_str()).collect::<Vec<_>>().join(", "));
        }
        self.commit_with_emails(&audit, &notices.emails, now).await
    }
}

#[async_trait]
impl Readiness for SqlStore {
    async fn ready(&self) -> bool {
        self.ping().await
    }
}

pub(super) fn flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

pub(super) fn count(row: &AnyRow, col: &str) -> Result<u32, sqlx::Error> {
    Ok(u32::try_from(row.try_get::<i64, _>(col)?).unwrap_or(u32::MAX))
}

pub(super) fn grant_from_row(row: &AnyRow) -> StoreResult<Grant> {
    Ok(Grant {
        dpa_level: u8::try_from(row.try_get::<i64, _>("dpa_level").db()?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        expert_mode: flag(row, "expert_mode").db()?,
        auditor: flag(row, "auditor").db()?,
        directory_admin: flag(row, "directory_admin").db()?,
    })
}

pub(super) fn person_from_row(row: &AnyRow) -> StoreResult<Person> {
    let email: String = row.try_get("email").db()?;
    let status: String = row.try_get("status").db()?;
    Ok(Person {
        id: PersonId(row.try_get("person_id").db()?),
        display_name: row.try_get("display_name").db()?,
        email: EmailAddress::from_stored(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        phone: row.try_get("phone").db()?,
        manager_id: row.try_get::<Option<i64>, _>("manager_id").db()?.map(PersonId),
        department: row.try_get("department").db()?,
        status: PersonStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: row.try_get("created_at").db()?,
    })
}

pub(super) fn account_from_row(row: &AnyRow) -> StoreResult<Account> {
    let source: String = row.try_get("source").db()?;
    let reason: Option<String> = row.try_get("lock_reason").db()?;
    Ok(Account {
        id: AccountId(row.try_get("account_id").db()?),
        person_id: PersonId(row.try_get("person_id").db()?),
        username: row.try_get("username").db()?,
        source: AccountSource::from_str(&source).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: row.try_get("password_hash").db()?,
        password_changed_at: row.try_get("password_changed_at").db()?,
        failed_attempts: count(row, "failed_attempts").db()?,
        lock_count: count(row, "lock_count").db()?,
        locked_at: row.try_get("locked_at").db()?,
        lock_reason: reason
            .map(|r| LockReason::from_str(&r))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        locked_until: row.try_get("locked_until").db()?,
        unlocked_by: row.try_get("unlocked_by").db()?,
        unlocked_at: row.try_get("unlocked_at").db()?,
        required: crate::domain::RequiredActions {
            change_password: flag(row, "require_change_password").db()?,
            enroll_mfa: flag(row, "require_enroll_mfa").db()?,
            device_authorization: flag(row, "require_device_authorization").db()?,
        },
        qa_failed_attempts: count(row, "qa_failed_attempts").db()?,
        qa_locked_at: row.try_get("qa_locked_at").db()?,
        created_at: row.try_get("created_at").db()?,
        last_failed_at: row.try_get("last_failed_at").db()?,
        temporary_password_until: row.try_get("temporary_password_until").db()?,
    })
}

/// Rows per multi-row statement in bulk writes: at 15 columns, well under SQLite's 32,766 bound parameters.
pub(super) const MANY_PER_STATEMENT: usize = 500;

/// Placeholders for a statement built at run time. SQLite gets anonymous `?`: sqlx looks each parameter's
/// name up (`sqlite3_bind_parameter_name`, a linear scan), which made a 7,500-parameter `$n` statement
/// quadratic (72% of an import's time); PostgreSQL needs `$n`.
pub(super) struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    pub(super) fn new(backend: Backend) -> Self {
        Self { backend, next: 0 }
    }

    /// The next parameter's placeholder.
    pub(super) fn next(&mut self) -> String {
        self.next += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.next),
        }
    }

    /// `(…, …), (…, …)`: `rows` groups of `columns`, for a multi-row `VALUES`.
    pub(super) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows).map(|_| format!("({})", self.list(columns))).collect::<Vec<_>>().join(", ")
    }

    /// `…, …`: `n` of them, for `IN (…)`.
    pub(super) fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

pub(super) fn unique_violation(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what.to_owned()),
        _ => StoreError::Database(e.to_string()),
    }
}

pub(super) async fn insert_person(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    key: &AuditKey,
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
                .await
                .db()?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()
                .db()?
                .ok_or_else(|| StoreError::NotFound(format!("manager {email} is not in the directory")))?,
        ),
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO person (display_name, email, phone, manager_id, department, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {PERSON_COLUMNS}"
    )))
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
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO account (person_id, username, source, password_hash, password_changed_at, require_change_password, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ACCOUNT_COLUMNS}"
    )))
    .bind(person.id.0)
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
    // The search row (migration 0014), lower-cased by the database as the search's pattern is compared.
    sqlx::query(
        "INSERT INTO person_search (person_id, sort_key, haystack) \
         VALUES ($1, lower($2), lower($2) || ' ' || lower($3) || ' ' || lower($4))",
    )
    .bind(person.id.0)
    .bind(new.display_name.as_str())
    .bind(new.email.as_str())
    .bind(new.username.as_str())
    .execute(&mut *conn)
    .await
    .db()?;
    if backend == Backend::Sqlite {
        super::sql_search::place(conn, person.id.0).await?;
    }
    write_grant(&mut *conn, person.id, &new.grant, "system", now).await?;
    if new.password_hash.is_some() {
        history(&mut *conn, account.id, "password", "bound", &audit.actor, None, now).await?;
    }
    let mut entry = audit.clone();
    entry.subject_person_id = Some(person.id.0);
    entry.subject_account_id = Some(account.id.0);
    append(conn, key, &entry).await?;
    Ok((person, account))
}

pub(super) async fn write_grant(
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
    .bind(person.0)
    .bind(i64::from(g.dpa_level))
    .bind(i64::from(g.expert_mode))
    .bind(i64::from(g.auditor))
    .bind(i64::from(g.directory_admin))
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await.db()?;
    Ok(())
}

pub(super) async fn history(
    conn: &mut sqlx::AnyConnection,
    account: AccountId,
    kind: &str,
    change: &str,
    // Who made the change: the audit row's actor.
    by: &str,
    // What it names, when the account has several of the kind (a passkey's name).
    detail: Option<&str>,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authenticator_history (account_id, kind, change, at, actor, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account.0)
    .bind(kind)
    .bind(change)
    .bind(now)
    .bind(by)
    .bind(detail)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

/// Record a sign-in attempt and its audit row inside the caller's transaction.
pub(super) async fn insert_sign_in(conn: &mut sqlx::AnyConnection, key: &AuditKey, e: &SignInEvent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sign_in_event (account_id, at, outcome, method, client_ip, city, country, asn, network, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.account_id.map(i64::from))
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
    .await.db()?;
    let details = serde_json::json!({
        "method": e.method, "city": e.city, "country": e.country, "network": e.network, "user_agent": e.user_agent,
    });
    let mut entry = AuditEntry::new(e.at, &Actor::Public, "sign_in", &e.outcome)
        .ip(e.client_ip.clone())
        .details(details.to_string());
    entry.subject_account_id = e.account_id.map(i64::from);
    // Whose sign-in it was, so the audit log filters it by person like every other event about them.
    if let Some(account) = e.account_id {
        entry.subject_person_id = sqlx::query_scalar("SELECT person_id FROM account WHERE account_id = $1")
            .bind(i64::from(account))
            .fetch_optional(&mut *conn)
            .await
            .db()?;
    }
    append(conn, key, &entry).await?;
    Ok(())
}
