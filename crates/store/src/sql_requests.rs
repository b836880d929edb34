//! Assistance requests on the SQL backends: stored, claimed for processing, completed with their dossier,
//! emails and audit row in one transaction, listed and closed.

use super::sql::SqlStore;
use super::*;
use crate::audit::Actor;
use crate::email::OutgoingEmail;
use sqlx::Row;
use sqlx::any::AnyRow;

const REQUEST_COLUMNS: &str = "assistance_request_id, reference, submitted_email, problem, description, client_ip, user_agent, \
    created_at, status, joined_to, repeat_count, person_id, account_id, dossier, notified, closed_by, closed_at, close_note, \
    network, country";

fn request_from_row(r: &AnyRow) -> StoreResult<AssistanceRequest> {
    Ok(AssistanceRequest {
        id: r.try_get("assistance_request_id").db()?,
        reference: r.try_get("reference").db()?,
        submitted_email: r.try_get("submitted_email").db()?,
        problem: r.try_get("problem").db()?,
        description: r.try_get("description").db()?,
        client_ip: r.try_get("client_ip").db()?,
        user_agent: r.try_get("user_agent").db()?,
        created_at: r.try_get("created_at").db()?,
        status: {
            let status: String = r.try_get("status").db()?;
            RequestStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown assistance request status {status:?}")))?
        },
        joined_to: r.try_get("joined_to").db()?,
        repeat_count: r.try_get("repeat_count").db()?,
        person_id: r.try_get::<Option<i64>, _>("person_id").db()?.map(PersonId),
        account_id: r.try_get::<Option<i64>, _>("account_id").db()?.map(AccountId),
        dossier: r.try_get("dossier").db()?,
        notified: r.try_get("notified").db()?,
        closed_by: r.try_get("closed_by").db()?,
        closed_at: r.try_get("closed_at").db()?,
        close_note: r.try_get("close_note").db()?,
        network: r.try_get("network").db()?,
        country: r.try_get("country").db()?,
    })
}

#[async_trait]
impl AssistanceStore for SqlStore {
    async fn insert_assistance_request(&self, r: &NewAssistanceRequest) -> StoreResult<()> {
        self.insert_assistance_request_charged(&[], r).await.map(|_| ())
    }

    async fn insert_assistance_request_charged(
        &self,
        buckets: &[RateBucket],
        r: &NewAssistanceRequest,
    ) -> StoreResult<RateCharge> {
        let mut tx = self.audited().await?;
        if let Some(first_full) = super::sql_rate_limits::charge(&mut tx, buckets).await? {
            tx.rollback().await?;
            return Ok(RateCharge::Refused { full: self.full_buckets(buckets, first_full).await? });
        }
        sqlx::query(
            "INSERT INTO assistance_request (reference, submitted_email, problem, description, client_ip, user_agent, created_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'received')",
        )
        .bind(r.reference.as_str())
        .bind(&r.submitted_email)
        .bind(r.problem.as_str())
        .bind(r.description.as_deref())
        .bind(&r.client_ip)
        .bind(&r.user_agent)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("reference taken".into()),
            _ => StoreError::Database(e.to_string()),
        })?;
        let mut entry = AuditEntry::new(r.created_at, &Actor::Public, "assistance.request", "received")
            .ip(r.client_ip.clone())
            .details(
                serde_json::json!({ "submitted_email": r.submitted_email, "type": r.problem.as_str() }).to_string(),
            );
        entry.reference = Some(r.reference.to_string());
        tx.commit(&entry).await?;
        Ok(RateCharge::Taken)
    }

    async fn claim_received_request(
        &self,
        now: Timestamp,
        lease_seconds: i64,
    ) -> StoreResult<Option<AssistanceRequest>> {
        let _turn = self.write_turn().await;
        let candidates: Vec<i64> = sqlx::query(
            "SELECT assistance_request_id FROM assistance_request WHERE status = 'received' \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY assistance_request_id LIMIT 5",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .db()?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()
        .db()?;
        for id in candidates {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE assistance_request SET claimed_until = $1 WHERE assistance_request_id = $2 AND status = 'received' \
                 AND (claimed_until IS NULL OR claimed_until <= $3) RETURNING {REQUEST_COLUMNS}"
            )))
            .bind(now + lease_seconds)
            .bind(id)
            .bind(now)
            .fetch_optional(self.pool())
            .await.db()?;
            if let Some(r) = row {
                return Ok(Some(request_from_row(&r)?));
            }
        }
        Ok(None)
    }

    async fn complete_assistance_request(
        &self,
        id: i64,
        p: &Processed,
        repeat_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<ProcessOutcome> {
        let mut tx = self.audited().await?;
        // One completion at a time across instances, so two repeats cannot both open.
        sqlx::query("UPDATE job_lock SET runs = runs + 1 WHERE name = 'assistance'").execute(&mut *tx).await.db()?;
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE assistance_request_id = $1 AND status = 'received'"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .db()?
        else {
            return Ok(ProcessOutcome::AlreadyProcessed);
        };
        let request = request_from_row(&row)?;
        let open = sqlx::query(
            "SELECT assistance_request_id, repeat_count FROM assistance_request WHERE submitted_email = $1 AND problem = $2 \
             AND status = 'open' AND created_at >= $3 AND assistance_request_id <> $4 ORDER BY assistance_request_id LIMIT 1",
        )
        .bind(&request.submitted_email)
        .bind(&request.problem)
        .bind(repeat_since)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await.db()?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
        .transpose().db()?;
        // The emails were composed for what the caller saw; under the lock, make sure it still holds.
        if open != p.joins {
            return Ok(ProcessOutcome::Stale);
        }
        let mut entry =
            AuditEntry::new(now, &Actor::System, "assistance.request", "opened").ip(request.client_ip.clone());
        entry.reference = Some(request.reference.clone());
        entry.subject_person_id = p.person_id.map(i64::from);
        entry.subject_account_id = p.account_id.map(i64::from);
        let notified = (!p.notified.is_empty() && !p.emails.is_empty()).then(|| p.notified.join(", "));
        let digest = p.digest_due_at.map(|at| format!("; the admins will hear of it in the digest due at {at}"));
        let outcome = if let Some((open_id, _)) = open {
            sqlx::query(
                "UPDATE assistance_request SET repeat_count = repeat_count + 1 WHERE assistance_request_id = $1",
            )
            .bind(open_id)
            .execute(&mut *tx)
            .await
            .db()?;
            sqlx::query(
                "UPDATE assistance_request SET status = 'joined', joined_to = $1, person_id = $2, account_id = $3, \
                 dossier = $4, notified = $5, network = $6, country = $7, processed_at = $8, claimed_until = NULL \
                 WHERE assistance_request_id = $9",
            )
            .bind(open_id)
            .bind(p.person_id.map(i64::from))
            .bind(p.account_id.map(i64::from))
            .bind(&p.dossier_json)
            .bind(notified.as_deref())
            .bind(&p.network)
            .bind(p.country.as_deref())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
            entry.outcome = "joined".into();
            entry.details = Some(if p.emails.is_empty() {
                format!(
                    "repeat of an open request (id {open_id}) from a network and country it came from before; admins not emailed again"
                )
            } else {
                format!(
                    "repeat of an open request (id {open_id}) from a new network or country; admins emailed an update"
                )
            });
            entry.notified = notified;
            ProcessOutcome::JoinedOpen { open_id }
        } else {
            sqlx::query(
                "UPDATE assistance_request SET status = 'open', person_id = $1, account_id = $2, dossier = $3, notified = $4, \
                 network = $5, country = $6, processed_at = $7, claimed_until = NULL, digest_due_at = $8 \
                 WHERE assistance_request_id = $9",
            )
            .bind(p.person_id.map(i64::from))
            .bind(p.account_id.map(i64::from))
            .bind(&p.dossier_json)
            .bind(notified.as_deref().unwrap_or(""))
            .bind(&p.network)
            .bind(p.country.as_deref())
            .bind(now)
            .bind(p.digest_due_at)
            .bind(id)
            .execute(&mut *tx)
            .await.db()?;
            entry.details = digest.map(|d| d.trim_start_matches("; ").to_owned());
            entry.notified = notified;
            ProcessOutcome::Opened
        };
        tx.commit_with_emails(&entry, &p.emails, now).await?;
        Ok(outcome)
    }

    async fn assistance_requests(
        &self,
        status: Option<RequestStatus>,
        problem: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AssistanceRequest>> {
        // Open requests first, newest first within each status.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE status <> 'received' AND status <> 'joined' \
             AND ($1 = '' OR status = $1) AND ($2 = '' OR problem = $2) \
             ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at DESC, assistance_request_id DESC LIMIT $3"
        )))
        .bind(status.map(RequestStatus::as_str).unwrap_or(""))
        .bind(problem.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .db()?;
        rows.iter().map(request_from_row).collect()
    }

    async fn open_requests_waiting(&self) -> StoreResult<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM assistance_request WHERE status = 'open'",
        )
        .fetch_one(self.pool())
        .await
        .db()?;
        Ok((row.try_get("waiting").db()?, row.try_get("oldest").db()?))
    }

    async fn assistance_request(&self, reference: &str) -> StoreResult<Option<AssistanceRequest>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE reference = $1"
        )))
        .bind(reference)
        .fetch_optional(self.pool())
        .await
        .db()?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn assistance_request_by_id(&self, id: i64) -> StoreResult<Option<AssistanceRequest>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE assistance_request_id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .db()?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn open_request_like(
        &self,
        submitted_email: &str,
        problem: &str,
        since: Timestamp,
        except: i64,
    ) -> StoreResult<Option<AssistanceRequest>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE submitted_email = $1 AND problem = $2 \
             AND status = 'open' AND created_at >= $3 AND assistance_request_id <> $4 ORDER BY assistance_request_id LIMIT 1"
        )))
        .bind(submitted_email)
        .bind(problem)
        .bind(since)
        .bind(except)
        .fetch_optional(self.pool())
        .await.db()?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn requests_from_source(
        &self,
        ip: &str,
        network: &str,
        since: Timestamp,
        except_email: &str,
    ) -> StoreResult<Vec<AssistanceRequest>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE (client_ip = $1 OR network = $2) \
             AND created_at >= $3 AND submitted_email <> $4 ORDER BY created_at DESC, assistance_request_id DESC LIMIT 50"
        )))
        .bind(ip)
        .bind(network)
        .bind(since)
        .bind(except_email)
        .fetch_all(self.pool())
        .await.db()?;
        rows.iter().map(request_from_row).collect()
    }

    async fn assistance_submissions(&self, id: i64) -> StoreResult<Vec<AssistanceRequest>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE assistance_request_id = $1 OR joined_to = $1 \
             ORDER BY assistance_request_id"
        )))
        .bind(id)
        .fetch_all(self.pool())
        .await
        .db()?;
        rows.iter().map(request_from_row).collect()
    }

    async fn digest_due(&self, now: Timestamp) -> StoreResult<Vec<AssistanceRequest>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM assistance_request WHERE digest_due_at IS NOT NULL AND digest_due_at <= $1 \
             ORDER BY assistance_request_id"
        )))
        .bind(now)
        .fetch_all(self.pool())
        .await
        .db()?;
        rows.iter().map(request_from_row).collect()
    }

    async fn complete_digest(
        &self,
        last_id: i64,
        count: usize,
        notified: &[String],
        emails: &[OutgoingEmail],
        audit: &AuditEntry,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        // Serialised with request processing, which is what marks requests for a digest.
        sqlx::query("UPDATE job_lock SET runs = runs + 1 WHERE name = 'assistance'").execute(&mut *tx).await.db()?;
        let notified = notified.join(", ");
        let marked = sqlx::query(
            "UPDATE assistance_request SET digest_due_at = NULL, notified = $1 \
             WHERE digest_due_at IS NOT NULL AND digest_due_at <= $2 AND assistance_request_id <= $3",
        )
        .bind(&notified)
        .bind(now)
        .bind(last_id)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected();
        if marked != count as u64 {
            return Ok(false);
        }
        let mut entry = audit.clone();
        entry.notified = Some(notified);
        tx.commit_with_emails(&entry, emails, now).await?;
        Ok(true)
    }

    async fn close_assistance_request(
        &self,
        reference: &str,
        status: RequestStatus,
        note: &str,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.audited().await?;
        let done = sqlx::query(
            "UPDATE assistance_request SET status = $1, closed_by = $2, closed_at = $3, close_note = $4 \
             WHERE reference = $5 AND status = 'open'",
        )
        .bind(status.as_str())
        .bind(&audit.actor)
        .bind(audit.at)
        .bind(note)
        .bind(reference)
        .execute(&mut *tx)
        .await
        .db()?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        tx.commit(audit).await?;
        Ok(true)
    }

    async fn notification_recipients(&self, min_dpa: u8) -> StoreResult<Vec<(String, Grant)>> {
        let rows = sqlx::query(
            // From the few grants that reach the level (their index) to their people: SQLite's planner, not
            // knowing $1, walked a million people in email order instead (1–3 s a query at 1M people).
            // CROSS JOIN fixes SQLite's join order; PostgreSQL plans it as any join.
            "SELECT p.email, g.dpa_level, g.expert_mode, g.auditor, g.directory_admin FROM permission_grant g \
             CROSS JOIN person p WHERE p.person_id = g.person_id \
             AND p.status = 'active' AND g.dpa_level >= $1 ORDER BY p.email",
        )
        .bind(i64::from(min_dpa))
        .fetch_all(self.pool())
        .await
        .db()?;
        rows.iter().map(|r| Ok((r.try_get("email").db()?, super::sql::grant_from_row(r)?))).collect()
    }

    async fn authenticator_changes(
        &self,
        account: AccountId,
        limit: i64,
    ) -> StoreResult<Vec<(String, String, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT kind, change, at FROM authenticator_history WHERE account_id = $1 \
             ORDER BY at DESC, authenticator_history_id DESC LIMIT $2",
        )
        .bind(account.0)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .db()?;
        rows.iter().map(|r| Ok((r.try_get("kind").db()?, r.try_get("change").db()?, r.try_get("at").db()?))).collect()
    }

    async fn last_audit_action(&self, account: AccountId, actions: &[&str]) -> StoreResult<Option<Timestamp>> {
        let mut newest = None;
        for action in actions {
            let at: Option<i64> =
                sqlx::query("SELECT MAX(at) AS at FROM audit_event WHERE subject_account_id = $1 AND action = $2 AND outcome = 'success'")
                    .bind(account.0)
                    .bind(*action)
                    .fetch_one(self.pool())
                    .await.db()?
                    .try_get("at").db()?;
            newest = newest.max(at);
        }
        Ok(newest)
    }

    async fn seen_before(
        &self,
        account: AccountId,
        ip: &str,
        network: &str,
        before: Timestamp,
    ) -> StoreResult<(bool, bool)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN client_ip = $2 THEN 1 ELSE 0 END), 0) AS ip_hits, \
             COALESCE(SUM(CASE WHEN network = $3 THEN 1 ELSE 0 END), 0) AS network_hits \
             FROM sign_in_event WHERE account_id = $1 AND outcome = 'success' AND at <= $4",
        )
        .bind(account.0)
        .bind(ip)
        .bind(network)
        .bind(before)
        .fetch_one(self.pool())
        .await
        .db()?;
        Ok((row.try_get::<i64, _>("ip_hits").db()? > 0, row.try_get::<i64, _>("network_hits").db()? > 0))
    }
}
