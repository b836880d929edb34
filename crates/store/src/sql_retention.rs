//! Removing personal data that has done its job, each removal with its audit row.

use super::sql::SqlStore;
use super::*;

#[async_trait]
impl RetentionStore for SqlStore {
    async fn delete_sign_in_events_before(&self, before: Timestamp, audit: &AuditEntry) -> StoreResult<u64> {
        let mut tx = self.audited().await?;
        let removed = sqlx::query("DELETE FROM sign_in_event WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
        if removed == 0 {
            return Ok(0);
        }
        let mut entry = audit.clone();
        entry.details = Some(serde_json::json!({ "removed": removed, "before": before }).to_string());
        tx.commit(&entry).await?;
        Ok(removed)
    }

    async fn delete_closed_requests_before(&self, before: Timestamp, audit: &AuditEntry) -> StoreResult<u64> {
        let mut tx = self.audited().await?;
        let closed = "SELECT assistance_request_id FROM assistance_request \
                      WHERE status IN ('resolved', 'dismissed') AND closed_at < $1";
        // Repeats first: they point at the request they joined.
        let repeats =
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM assistance_request WHERE joined_to IN ({closed})")))
                .bind(before)
                .execute(&mut *tx)
                .await
                .db()?
                .rows_affected();
        let requests =
            sqlx::query("DELETE FROM assistance_request WHERE status IN ('resolved', 'dismissed') AND closed_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .db()?
                .rows_affected();
        let removed = repeats + requests;
        if removed == 0 {
            return Ok(0);
        }
        let mut entry = audit.clone();
        entry.details = Some(
            serde_json::json!({ "removed_requests": requests, "removed_repeats": repeats, "closed_before": before })
                .to_string(),
        );
        tx.commit(&entry).await?;
        Ok(removed)
    }
}
