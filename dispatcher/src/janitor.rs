//! The janitor: deletes bookkeeping rows past their retention (`[retention]` in the config):
//! consumer de-duplication records and stored Idempotency-Key answers. Runs in every dispatcher;
//! the deletes are idempotent, so replicas running it at once do no harm.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fieldops_core::platform::app::Shared;
use sqlx::PgPool;

/// How much was deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub processed_messages: u64,
    pub idempotency_keys: u64,
}

pub async fn run(shared: Shared) {
    let r = &shared.settings.retention;
    let parse = |v: &str| fieldops_core::domain::Duration::parse(v).map(|d| d.0).unwrap_or(chrono::Duration::days(7));
    let (messages, keys) = (parse(&r.processed_messages), parse(&r.idempotency_keys));
    let interval = Duration::from_secs(r.interval_secs.max(1));
    loop {
        match sweep(&shared.db, Utc::now(), messages, keys).await {
            Ok(s) if s != Swept::default() => {
                tracing::info!(processed_messages = s.processed_messages, idempotency_keys = s.idempotency_keys, "janitor swept")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "janitor round failed"),
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Deletes rows older than their retention as of `now`.
pub async fn sweep(db: &PgPool, now: DateTime<Utc>, messages: chrono::Duration, keys: chrono::Duration) -> anyhow::Result<Swept> {
    let processed_messages =
        sqlx::query("delete from processed_message where processed_at < $1").bind(now - messages).execute(db).await?.rows_affected();
    let idempotency_keys =
        sqlx::query("delete from idempotency_key where created_at < $1").bind(now - keys).execute(db).await?.rows_affected();
    Ok(Swept { processed_messages, idempotency_keys })
}
