//! Managers' resets, secure links and tickets on the SQL backends (SPEC §5). A reset commits with its ticket,
//! its secure link, its emails and its audit row; a secure link is used by the one statement that checks it is
//! unused and live, so of concurrent uses exactly one gets the password, which that statement also wipes.

use super::sql::*;
use super::sql_recovery::{clear_lockout, end_sessions, lock_person, remove_mfa, revoke_secrets};
use super::*;
use sqlx::Row;

const TICKET_COLUMNS: &str = "ticket_id, reference, kind, requester_person_id, subject_person_id, subject_account_id, \
     status, summary, assignee, created_at, updated_at";

fn ticket_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Ticket> {
    let kind: String = row.try_get("kind").db()?;
    let status: String = row.try_get("status").db()?;
    Ok(Ticket {
        id: row.try_get("ticket_id").db()?,
        reference: row.try_get("reference").db()?,
        kind: TicketKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("ticket kind {kind:?}")))?,
        requester: PersonId(row.try_get("requester_person_id").db()?),
        subject: PersonId(row.try_get("subject_person_id").db()?),
        subject_account: row.try_get::<Option<i64>, _>("subject_account_id").db()?.map(AccountId),
        status: TicketStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("ticket status {status:?}")))?,
        summary: row.try_get("summary").db()?,
        assignee: row.try_get("assignee").db()?,
        created_at: row.try_get("created_at").db()?,
        updated_at: row.try_get("updated_at").db()?,
    })
}

const ATTESTATION_COLUMNS: &str = "attestation_id, subject_person_id, manager_person_id, requested_by_account, \
     requested_by, reference, question, status, answer_note, answered_by, answered_at, answered_second_factor_at, \
     created_at, expires_at";

fn attestation_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Attestation> {
    Ok(Attestation {
        id: row.try_get("attestation_id").db()?,
        subject: PersonId(row.try_get("subject_person_id").db()?),
        manager: PersonId(row.try_get("manager_person_id").db()?),
        requested_by_account: AccountId(row.try_get("requested_by_account").db()?),
        requested_by: row.try_get("requested_by").db()?,
        reference: row.try_get("reference").db()?,
        question: row.try_get("question").db()?,
        status: row.try_get("status").db()?,
        answer_note: row.try_get("answer_note").db()?,
        answered_by: row.try_get("answered_by").db()?,
        answered_at: row.try_get("answered_at").db()?,
        answered_second_factor_at: row.try_get("answered_second_factor_at").db()?,
        created_at: row.try_get("created_at").db()?,
        expires_at: row.try_get("expires_at").db()?,
    })
}

async fn add_note(
    conn: &mut sqlx::AnyConnection,
    ticket: i64,
    at: Timestamp,
    author: &str,
    status: Option<TicketStatus>,
    body: &str,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO ticket_note (ticket_id, at, author, status, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(ticket)
        .bind(at)
        .bind(author)
        .bind(status.map(TicketStatus::as_str))
        .bind(body)
        .execute(&mut *conn)
        .await
        .db()?;
    Ok(())
}

#[async_trait]
impl TeamStore for SqlStore {
    async fn apply_manager_reset(
        &self,
        change: &ManagerResetChange,
        ticket: &NewTicket,
        link: Option<&NewSecureLink>,
        not_me: Option<&NewSecret>,
        emails: &[crate::email::OutgoingEmail],
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<i64> {
        let mut tx = self.audited().await?;
        lock_person(&mut tx, Some(change.account), None).await?;
        let account = change.account;
        if let Some(hash) = &change.password_hash {
            sqlx::query(
                "UPDATE account SET password_hash = $1, password_changed_at = $2, require_change_password = 1, \
                   temporary_password_until = $3 WHERE account_id = $4",
            )
            .bind(hash)
            .bind(now)
            .bind(change.password_until)
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?;
            history(&mut tx, account, "password", "temporary", &audit.actor, None, now).await?;
        }
        if change.reset_mfa {
            remove_mfa(&mut tx, account, &audit.actor, now).await?;
            sqlx::query(
                "UPDATE account SET require_enroll_mfa = 1, \
                   require_device_authorization = CASE WHEN $1 = 1 THEN 1 ELSE require_device_authorization END \
                 WHERE account_id = $2",
            )
            .bind(i64::from(change.device_authorization))
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        if change.password_hash.is_some() || change.reset_mfa {
            // Whoever held the old credentials is out, and nothing handed out before still opens the account.
            end_sessions(&mut tx, account).await?;
            revoke_secrets(&mut tx, account, Some(SecretKind::NotMe), now).await?;
            // A verified reset must not leave the person locked out (except by "this wasn't me" or an admin).
            clear_lockout(&mut tx, account, &audit.actor, now).await?;
        }
        let id: i64 = sqlx::query(
            "INSERT INTO ticket (reference, kind, requester_person_id, subject_person_id, subject_account_id, status, \
               summary, confirm_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ticket_id",
        )
        .bind(&ticket.reference)
        .bind(ticket.kind.as_str())
        .bind(ticket.requester.0)
        .bind(ticket.subject.0)
        .bind(ticket.subject_account.map(|a| a.0))
        .bind(ticket.status.as_str())
        .bind(&ticket.summary)
        .bind(ticket.confirm_hash.as_ref().map(|h| h.0.clone()))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .db()?
        .try_get(0)
        .db()?;
        add_note(&mut tx, id, now, &ticket.author, Some(ticket.status), &ticket.note).await?;
        if let Some(link) = link {
            sqlx::query(
                "INSERT INTO secure_link (link_hash, ticket_id, manager_account_id, subject_account_id, \
                   sealed_password, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&link.hash.0)
            .bind(id)
            .bind(link.manager_account.0)
            .bind(link.subject_account.0)
            .bind(&link.sealed_password)
            .bind(now)
            .bind(link.expires_at)
            .execute(&mut *tx)
            .await
            .db()?;
        }
        if let Some(secret) = not_me {
            sqlx::query(
                "INSERT INTO recovery_secret (account_id, kind, secret_hash, created_at, expires_at, multi_use, action, reference) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
            )
            .bind(secret.account.0)
            .bind(secret.kind.as_str())
            .bind(&secret.hash.0)
            .bind(now)
            .bind(secret.expires_at)
            .bind(secret.action.as_deref())
            .bind(secret.reference.as_deref())
            .execute(&mut *tx)
            .await
            .db()?;
        }
        let mut entry = audit.clone();
        entry.reference = Some(ticket.reference.clone());
        tx.commit_with_emails(&entry, emails, now).await?;
        Ok(id)
    }

    async fn secure_link(&self, hash: &TokenHash) -> StoreResult<Option<SecureLink>> {
        let row = sqlx::query(
            "SELECT secure_link_id, ticket_id, manager_account_id, subject_account_id, created_at, expires_at, used_at, \
               CASE WHEN sealed_password IS NULL THEN 1 ELSE 0 END AS revoked \
             FROM secure_link WHERE link_hash = $1",
        )
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.map(|r| {
            Ok(SecureLink {
                id: r.try_get("secure_link_id").db()?,
                ticket: r.try_get("ticket_id").db()?,
                manager_account: AccountId(r.try_get("manager_account_id").db()?),
                subject_account: AccountId(r.try_get("subject_account_id").db()?),
                created_at: r.try_get("created_at").db()?,
                expires_at: r.try_get("expires_at").db()?,
                used_at: r.try_get("used_at").db()?,
                revoked: r.try_get::<i64, _>("revoked").db()? != 0,
            })
        })
        .transpose()
    }

    async fn use_secure_link(
        &self,
        hash: &TokenHash,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> StoreResult<Option<Vec<u8>>> {
        let mut tx = self.audited().await?;
        // Claim first (the write lock, before any read: no stale snapshot on SQLite, a row lock on PostgreSQL):
        // of concurrent uses exactly one updates the row; the others find it used.
        let won = sqlx::query(
            "UPDATE secure_link SET used_at = $1 \
             WHERE link_hash = $2 AND used_at IS NULL AND expires_at > $1 AND sealed_password IS NOT NULL",
        )
        .bind(now)
        .bind(&hash.0)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !won {
            tx.rollback().await?;
            return Ok(None);
        }
        let sealed: Vec<u8> = sqlx::query("SELECT sealed_password FROM secure_link WHERE link_hash = $1")
            .bind(&hash.0)
            .fetch_one(&mut *tx)
            .await
            .db()?
            .try_get("sealed_password")
            .db()?;
        // The password lives only until it is shown.
        sqlx::query("UPDATE secure_link SET sealed_password = NULL WHERE link_hash = $1")
            .bind(&hash.0)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit(audit).await?;
        Ok(Some(sealed))
    }

    async fn tickets(
        &self,
        status: Option<TicketStatus>,
        requester: Option<PersonId>,
        limit: i64,
    ) -> StoreResult<Vec<Ticket>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} FROM ticket \
             WHERE (($1 = '' AND status <> 'confirmed') OR status = $1) AND ($2 = 0 OR requester_person_id = $2) \
             ORDER BY CASE status WHEN 'open' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END, updated_at DESC, \
               ticket_id DESC LIMIT $3"
        )))
        .bind(status.map(TicketStatus::as_str).unwrap_or(""))
        .bind(requester.map(|p| p.0).unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn ticket(&self, reference: &str) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM ticket WHERE reference = $1")))
            .bind(reference)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_by_id(&self, id: i64) -> StoreResult<Option<Ticket>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM ticket WHERE ticket_id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_by_confirm_hash(&self, hash: &TokenHash) -> StoreResult<Option<Ticket>> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TICKET_COLUMNS} FROM ticket WHERE confirm_hash = $1")))
                .bind(&hash.0)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    async fn ticket_notes(&self, ticket: i64) -> StoreResult<Vec<TicketNote>> {
        let rows = sqlx::query(
            "SELECT at, author, status, body FROM ticket_note WHERE ticket_id = $1 ORDER BY ticket_note_id",
        )
        .bind(ticket)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                let status: Option<String> = r.try_get("status").db()?;
                Ok(TicketNote {
                    at: r.try_get("at").db()?,
                    author: r.try_get("author").db()?,
                    status: status.as_deref().and_then(TicketStatus::parse),
                    body: r.try_get("body").db()?,
                })
            })
            .collect()
    }

    async fn change_ticket(&self, change: &TicketChange<'_>) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let from: Vec<String> = change.from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        // The status moves only from where the caller saw it: of two engineers resolving at once, one does.
        let moved = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE ticket SET status = COALESCE($1, status), assignee = COALESCE($2, assignee), updated_at = $3, \
               confirm_hash = CASE WHEN $4 = 1 THEN $5 ELSE confirm_hash END \
             WHERE ticket_id = $6 AND status IN ({})",
            from.join(", ")
        )))
        .bind(change.to.map(TicketStatus::as_str))
        .bind(change.assignee)
        .bind(change.now)
        .bind(i64::from(change.confirm_hash.is_some()))
        .bind(change.confirm_hash.flatten().map(|h| h.0.clone()))
        .bind(change.ticket)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !moved {
            tx.rollback().await?;
            return Ok(false);
        }
        add_note(&mut tx, change.ticket, change.now, change.author, change.to, change.note).await?;
        tx.commit_with_emails(change.audit, change.emails, change.now).await?;
        Ok(true)
    }

    async fn create_attestation(
        &self,
        a: &Attestation,
        emails: &[crate::email::OutgoingEmail],
        audit: &AuditEntry,
    ) -> StoreResult<i64> {
        let mut tx = self.audited().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO attestation (subject_person_id, manager_person_id, requested_by_account, requested_by, \
               reference, question, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) RETURNING attestation_id",
        )
        .bind(a.subject.0)
        .bind(a.manager.0)
        .bind(a.requested_by_account.0)
        .bind(&a.requested_by)
        .bind(a.reference.as_deref())
        .bind(&a.question)
        .bind(a.created_at)
        .bind(a.expires_at)
        .fetch_one(&mut *tx)
        .await
        .db()?
        .try_get(0)
        .db()?;
        let mut entry = audit.clone();
        entry.details = Some(format!("attestation {id}: {}", entry.details.take().unwrap_or_default()));
        tx.commit_with_emails(&entry, emails, a.created_at).await?;
        Ok(id)
    }

    async fn attestation(&self, id: i64) -> StoreResult<Option<Attestation>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTESTATION_COLUMNS} FROM attestation WHERE attestation_id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(attestation_from_row).transpose()
    }

    async fn attestations_for_manager(&self, manager: PersonId, pending: bool) -> StoreResult<Vec<Attestation>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTESTATION_COLUMNS} FROM attestation WHERE manager_person_id = $1 \
             AND ($2 = 0 OR status = 'pending') ORDER BY attestation_id DESC LIMIT 200"
        )))
        .bind(manager.0)
        .bind(i64::from(pending))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(attestation_from_row).collect()
    }

    async fn attestations_about(&self, subject: PersonId) -> StoreResult<Vec<Attestation>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTESTATION_COLUMNS} FROM attestation WHERE subject_person_id = $1 \
             ORDER BY attestation_id DESC LIMIT 200"
        )))
        .bind(subject.0)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(attestation_from_row).collect()
    }

    async fn answer_attestation(&self, answer: &AttestationAnswer<'_>) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let answered = sqlx::query(
            "UPDATE attestation SET status = $1, answer_note = $2, answered_by = $3, answered_at = $4, \
               answered_second_factor_at = $5 \
             WHERE attestation_id = $6 AND status = 'pending' AND expires_at > $4",
        )
        .bind(if answer.confirmed { "confirmed" } else { "declined" })
        .bind(answer.note)
        .bind(answer.answered_by)
        .bind(answer.now)
        .bind(answer.second_factor_at)
        .bind(answer.id)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !answered {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit(answer.audit).await?;
        Ok(true)
    }
}
