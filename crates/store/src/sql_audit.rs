//! The audit chain on the SQL backends: appending inside a change's transaction, sealing, reading back.

use super::sql::{MANY_PER_STATEMENT, Placeholders, SqlStore};
use super::*;
use crate::audit::{self, Actor, AuditKey};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Append one audit row inside the caller's transaction. Updating the head first takes its lock, so
/// concurrent appenders (threads or instances) queue here and the chain stays one line.
///
/// The head must carry this key's seal: continuing from a head someone moved (say, after cutting the tail) would
/// seal their cut into a chain that verifies. So the append fails instead, and with it the change it records.
pub(super) async fn append(conn: &mut sqlx::AnyConnection, key: &AuditKey, entry: &AuditEntry) -> StoreResult<i64> {
    let head = lock_head(conn).await?;
    if !head.sealed_by(key) {
        return Err(head_not_ours());
    }
    append_after(conn, key, &head, entry).await
}

/// Take the head's lock (the write lock on SQLite, the row lock on PostgreSQL) and read it.
pub(super) async fn lock_head(conn: &mut sqlx::AnyConnection) -> StoreResult<AuditHead> {
    let row = sqlx::query(
        "UPDATE audit_head SET last_id = last_id WHERE audit_head_id = 1 RETURNING last_id, last_hash, seal",
    )
    .fetch_one(&mut *conn)
    .await
    .db()?;
    Ok(AuditHead {
        last_id: row.try_get("last_id").db()?,
        last_hash: row.try_get("last_hash").db()?,
        seal: row.try_get("seal").db()?,
    })
}

/// Write the row after `head` (whose lock the caller holds) and move the head to it, sealed.
async fn append_after(
    conn: &mut sqlx::AnyConnection,
    key: &AuditKey,
    head: &AuditHead,
    entry: &AuditEntry,
) -> StoreResult<i64> {
    let id = head.last_id + 1;
    let prev_hash = &head.last_hash;
    let hash = audit::hash(key, id, entry, prev_hash);
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
    .bind(prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await.db()?;
    set_head(conn, key, id, &hash).await?;
    Ok(id)
}

/// Write `entries` after `head` (whose lock the caller holds) as one chain, a few hundred rows per statement,
/// and move the head to the last: a bulk import's audit rows without a round trip each.
pub(super) async fn append_many(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    key: &AuditKey,
    head: &AuditHead,
    entries: &[AuditEntry],
) -> StoreResult<AuditHead> {
    const COLUMNS: usize = 15;
    let mut last_id = head.last_id;
    let mut last_hash = head.last_hash.clone();
    for chunk in entries.chunks(MANY_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for entry in chunk {
            let id = last_id + 1;
            let hash = audit::hash(key, id, entry, &last_hash);
            rows.push((id, entry, std::mem::replace(&mut last_hash, hash.clone()), hash));
            last_id = id;
        }
        let sql = format!(
            "INSERT INTO audit_event (audit_event_id, at, actor, on_behalf_of, action, subject_person_id, \
             subject_account_id, reason, details, client_ip, outcome, reference, notified, prev_hash, hash) VALUES {}",
            Placeholders::new(backend).rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, entry, prev_hash, hash) in rows {
            query = query
                .bind(id)
                .bind(entry.at)
                .bind(entry.actor.clone())
                .bind(entry.on_behalf_of.clone())
                .bind(entry.action.clone())
                .bind(entry.subject_person_id)
                .bind(entry.subject_account_id)
                .bind(entry.reason.clone())
                .bind(entry.details.clone())
                .bind(entry.client_ip.clone())
                .bind(entry.outcome.clone())
                .bind(entry.reference.clone())
                .bind(entry.notified.clone())
                .bind(prev_hash)
                .bind(hash);
        }
        query.execute(&mut *conn).await.db()?;
    }
    set_head(conn, key, last_id, &last_hash).await?;
    Ok(AuditHead { last_id, seal: Some(audit::head_seal(key, last_id, &last_hash)), last_hash })
}

/// Move the head to row `id` with `hash`, and seal it.
pub(super) async fn set_head(conn: &mut sqlx::AnyConnection, key: &AuditKey, id: i64, hash: &str) -> StoreResult<()> {
    sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2, seal = $3 WHERE audit_head_id = 1")
        .bind(id)
        .bind(hash)
        .bind(audit::head_seal(key, id, hash))
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<i64> {
        let tx = self.audited().await?;
        let id = tx.commit(entry).await?;
        Ok(id)
    }

    async fn audit_rows(&self, after: i64, limit: i64) -> StoreResult<Vec<Result<AuditRecord, UnreadableRow>>> {
        let rows = sqlx::query(
            "SELECT audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, reason, details, \
             client_ip, outcome, reference, notified, prev_hash, hash FROM audit_event \
             WHERE audit_event_id > $1 ORDER BY audit_event_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.db()?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_about(&self, person: PersonId, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, reason, details, \
             client_ip, outcome, reference, notified, prev_hash, hash FROM audit_event \
             WHERE subject_person_id = $1 ORDER BY audit_event_id DESC LIMIT $2",
        )
        .bind(person.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| audit_row(r)?.map_err(|u| StoreError::Corrupt(format!("audit row {}: {}", u.id, u.problem))))
            .collect()
    }

    async fn audit_search(&self, f: &AuditFilter, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let escape = |s: &str| s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let actor = f.actor.as_deref().map(|a| format!("%{}%", escape(a)));
        let action = f.action.as_deref().map(|a| format!("{}%", escape(a)));
        let rows = sqlx::query(
            "SELECT audit_event_id, at, actor, on_behalf_of, action, subject_person_id, subject_account_id, reason, details, \
             client_ip, outcome, reference, notified, prev_hash, hash FROM audit_event \
             WHERE ($1 < 0 OR subject_person_id = $1) AND ($2 = '' OR lower(actor) LIKE $2 ESCAPE '\\') \
               AND ($3 = '' OR lower(action) LIKE $3 ESCAPE '\\') AND at >= $4 AND at <= $5 \
             ORDER BY audit_event_id DESC LIMIT $6",
        )
        .bind(f.person.map(|p| p.0).unwrap_or(-1))
        .bind(actor.unwrap_or_default())
        .bind(action.unwrap_or_default())
        .bind(f.since.unwrap_or(i64::MIN))
        .bind(f.until.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| audit_row(r)?.map_err(|u| StoreError::Corrupt(format!("audit row {}: {}", u.id, u.problem))))
            .collect()
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        let row = sqlx::query("SELECT last_id, last_hash, seal FROM audit_head WHERE audit_head_id = 1")
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(AuditHead {
            last_id: row.try_get("last_id").db()?,
            last_hash: row.try_get("last_hash").db()?,
            seal: row.try_get("seal").db()?,
        })
    }

    async fn seal_audit_chain(&self, now: Timestamp) -> StoreResult<Sealing> {
        let key = self.audit_key()?;
        // Sealed already (every start but the first): a read says so, without waiting for the write lock.
        let row = sqlx::query("SELECT last_id, last_hash, seal FROM audit_head WHERE audit_head_id = 1")
            .fetch_one(&self.pool)
            .await
            .db()?;
        let seen = AuditHead {
            last_id: row.try_get("last_id").db()?,
            last_hash: row.try_get("last_hash").db()?,
            seal: row.try_get("seal").db()?,
        };
        if seen.seal.is_some() {
            return if seen.sealed_by(key) { Ok(Sealing::AlreadySealed) } else { Err(head_not_ours()) };
        }
        let mut tx = self.begin_write().await?;
        let head = lock_head(&mut tx).await?;
        if head.seal.is_some() {
            // Sealed already, by this key or not; a foreign seal is never replaced (that would launder a moved head).
            return if head.sealed_by(key) { Ok(Sealing::AlreadySealed) } else { Err(head_not_ours()) };
        }
        let sealing = if head.last_id == 0 {
            set_head(&mut tx, key, 0, &head.last_hash).await?;
            Sealing::NewLog
        } else {
            // The rows keep their plain hashes (earlier exports still compare); this keyed row's hash covers the
            // last of them, so none can change from now on without the key.
            let details = serde_json::json!({ "legacy_rows": head.last_id, "legacy_last_hash": head.last_hash });
            let entry = AuditEntry::new(now, &Actor::System, "audit.seal", "success")
                .reason("rows written before the audit chain was keyed are pinned by this row")
                .details(details.to_string());
            let seal_row = append_after(&mut tx, key, &head, &entry).await?;
            Sealing::PinnedLegacyRows { legacy_rows: head.last_id, seal_row }
        };
        tx.commit().await.db()?;
        Ok(sealing)
    }
}

pub(super) fn head_not_ours() -> StoreError {
    StoreError::Corrupt(
        "the audit log's head does not carry this key's seal: the database was changed, or this is not the key it \
         was written with (run `lifeline audit verify`)"
            .into(),
    )
}

/// A row as stored: its id must read (the schema makes it a NOT NULL integer); any other column that does not is
/// reported with the row's id instead of failing the whole read.
fn audit_row(r: &AnyRow) -> StoreResult<Result<AuditRecord, UnreadableRow>> {
    let id: i64 = r.try_get("audit_event_id").db()?;
    Ok(audit_record(r, id).map_err(|problem| UnreadableRow { id, hash: r.try_get("hash").ok(), problem }))
}

fn audit_record(r: &AnyRow, id: i64) -> Result<AuditRecord, String> {
    Ok(AuditRecord {
        id,
        entry: AuditEntry {
            at: column(r, "at")?,
            actor: column(r, "actor")?,
            on_behalf_of: column(r, "on_behalf_of")?,
            action: column(r, "action")?,
            subject_person_id: column(r, "subject_person_id")?,
            subject_account_id: column(r, "subject_account_id")?,
            reason: column(r, "reason")?,
            details: column(r, "details")?,
            client_ip: column(r, "client_ip")?,
            outcome: column(r, "outcome")?,
            reference: column(r, "reference")?,
            notified: column(r, "notified")?,
        },
        prev_hash: column(r, "prev_hash")?,
        hash: column(r, "hash")?,
    })
}

/// One column's value, or what is wrong with it.
fn column<'r, T>(r: &'r AnyRow, name: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get(name).map_err(|e| match e {
        sqlx::Error::ColumnDecode { source, .. } => format!("column {name} holds a value of the wrong type ({source})"),
        other => format!("column {name}: {other}"),
    })
}
