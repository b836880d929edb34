//! The outbox on the SQL backends: emails queued in the transaction of the change that causes them, claimed
//! with a lease, marked sent or retried with back-off.

use super::sql::SqlStore;
use super::*;
use crate::email::{MAX_ATTEMPTS, OutgoingEmail, QueuedEmail};
use sqlx::Row;

pub(crate) async fn enqueue(conn: &mut sqlx::AnyConnection, email: &OutgoingEmail, now: Timestamp) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_email (message_id, to_address, subject, text_body, html_body, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&email.message_id)
    .bind(&email.to)
    .bind(&email.subject)
    .bind(&email.text)
    .bind(&email.html)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_due_emails(&self, now: Timestamp, lease_seconds: i64, limit: i64) -> StoreResult<Vec<QueuedEmail>> {
        let _turn = self.write_turn().await;
        let candidates: Vec<i64> = sqlx::query(
            "SELECT outbox_email_id FROM outbox_email WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < $2 \
             AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY outbox_email_id LIMIT $3",
        )
        .bind(now)
        .bind(MAX_ATTEMPTS)
        // A few spare candidates, for the ones another instance claims first.
        .bind(limit + 8)
        .fetch_all(self.pool())
        .await.db()?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>().db()?;
        let mut claimed = Vec::new();
        for id in candidates {
            if claimed.len() as i64 >= limit {
                break;
            }
            // Compare-and-set: of several instances eyeing the same row, one wins the lease.
            let row = sqlx::query(
                "UPDATE outbox_email SET claimed_until = $1 WHERE outbox_email_id = $2 AND sent_at IS NULL \
                 AND (claimed_until IS NULL OR claimed_until <= $3) \
                 RETURNING outbox_email_id, message_id, to_address, subject, text_body, html_body, attempts",
            )
            .bind(now + lease_seconds)
            .bind(id)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .db()?;
            if let Some(r) = row {
                claimed.push(QueuedEmail {
                    id: r.try_get("outbox_email_id").db()?,
                    attempts: r.try_get("attempts").db()?,
                    email: OutgoingEmail {
                        message_id: r.try_get("message_id").db()?,
                        to: r.try_get("to_address").db()?,
                        subject: r.try_get("subject").db()?,
                        text: r.try_get("text_body").db()?,
                        html: r.try_get("html_body").db()?,
                    },
                });
            }
        }
        Ok(claimed)
    }

    async fn mark_email_sent(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        // The bodies go once delivered: they carry live links and codes, which the database otherwise holds
        // only as keyed hashes. The row stays (who was sent what subject when) for the record.
        sqlx::query(
            "UPDATE outbox_email SET sent_at = $1, claimed_until = NULL, last_error = NULL, text_body = '', \
             html_body = '' WHERE outbox_email_id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .db()?;
        Ok(())
    }

    async fn mark_email_failed(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE outbox_email SET attempts = $1, next_attempt_at = $2, last_error = $3, claimed_until = NULL \
             WHERE outbox_email_id = $4 AND sent_at IS NULL",
        )
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(self.pool())
        .await
        .db()?;
        Ok(())
    }

    async fn outbox_counts(&self) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END), 0) AS queued, \
             COALESCE(SUM(CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END), 0) AS sent FROM outbox_email",
        )
        .fetch_one(self.pool())
        .await
        .db()?;
        Ok((row.try_get("queued").db()?, row.try_get("sent").db()?))
    }

    async fn oldest_unsent_email_at(&self) -> StoreResult<Option<Timestamp>> {
        sqlx::query_scalar("SELECT MIN(created_at) FROM outbox_email WHERE sent_at IS NULL")
            .fetch_one(self.pool())
            .await
            .db()
    }
}
