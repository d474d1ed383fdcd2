//! The outbox relay: moves outbox rows to their Redis Streams and deletes them, in the
//! transaction that claimed them (`FOR UPDATE SKIP LOCKED`; replicas share the work). If Redis
//! fails the transaction rolls back and the rows wait; if the process dies after XADD and before
//! COMMIT the rows are sent again, which consumers absorb (they de-duplicate on the outbox id).

use std::time::Duration;

use fieldops_core::platform::app::Shared;
use fieldops_core::queue::streams;

use crate::wake::Wake;

pub async fn run(shared: Shared) {
    let mut wake = Wake::new(&shared.db, "fieldops_outbox", Duration::from_millis(shared.settings.dispatch.poll_interval_ms)).await;
    let mut backoff = Duration::from_millis(100);
    loop {
        loop {
            if shared.shutdown.is_cancelled() {
                return;
            }
            match relay_once(&shared).await {
                Ok(0) => break,
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = ?e, "outbox relay round failed; retrying");
                    tokio::select! {
                        _ = shared.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if !wake.wait(&shared.shutdown).await {
            return;
        }
    }
}

/// Relays one batch; returns how many rows moved.
pub async fn relay_once(shared: &Shared) -> anyhow::Result<usize> {
    let mut tx = shared.db.begin().await?;
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select id, stream, payload::text from outbox order by id limit $1 for update skip locked")
            .bind(shared.settings.dispatch.relay_batch)
            .fetch_all(&mut *tx)
            .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let entries: Vec<(String, i64, String)> =
        rows.iter().map(|(id, stream, payload)| (shared.keys.resolve(stream), *id, payload.clone())).collect();
    let mut conn = shared.redis.clone();
    streams::xadd_many(&mut conn, &entries).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    sqlx::query("delete from outbox where id = any($1)").bind(&ids).execute(&mut *tx).await?;
    tx.commit().await?;
    metrics::counter!("fieldops_outbox_relayed_total").increment(rows.len() as u64);
    Ok(rows.len())
}
