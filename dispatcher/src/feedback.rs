//! The feedback consumer: reads the `feedback` stream through the consumer group `dispatcher`
//! and applies task transitions to `directive_count`. Each batch is applied in one transaction
//! together with the outbox ids it consumed (`processed_message`), so a message seen twice
//! (relay re-send, reclaim after a crash) counts once. Acks follow the commit.

use std::time::Duration;

use fieldops_core::platform::app::Shared;
use fieldops_core::queue::streams::{self, Entry};
use fieldops_core::queue::{Message, Transition};
use fieldops_core::store::directives::apply_transitions;

pub const GROUP: &str = "dispatcher";
const CONSUMER_KEY: &str = "dispatcher.feedback";

pub fn consumer_name(shared: &Shared) -> String {
    if shared.settings.delivery.consumer_name.is_empty() {
        format!("{}-{}-{}", hostname(), std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
    } else {
        shared.settings.delivery.consumer_name.clone()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}

pub async fn run(shared: Shared) {
    let consumer = consumer_name(&shared);
    let key = shared.keys.feedback();
    loop {
        match consume(&shared, &key, &consumer).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = ?e, "feedback consumer failed; restarting");
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn consume(shared: &Shared, key: &str, consumer: &str) -> anyhow::Result<()> {
    // a blocking reader gets its own connection
    let mut conn = fieldops_core::platform::redis_conn::manager(&shared.redis_client, shared.settings.delivery.block_ms).await?;
    streams::ensure_group(&mut conn, key, GROUP).await?;
    let count = 256;
    // first what this consumer left pending, then new entries; reclaim dead consumers' entries now and then
    let mut pending_done = false;
    let mut last_reclaim = std::time::Instant::now();
    let mut last_trim = std::time::Instant::now();
    while !shared.shutdown.is_cancelled() {
        let entries = if !pending_done {
            let e = streams::read_group(&mut conn, key, GROUP, consumer, "0", count, None).await?;
            if e.is_empty() {
                pending_done = true;
            }
            e
        } else if last_reclaim.elapsed() > Duration::from_millis(shared.settings.delivery.reclaim_idle_ms) {
            last_reclaim = std::time::Instant::now();
            streams::autoclaim(&mut conn, key, GROUP, consumer, shared.settings.delivery.reclaim_idle_ms, count).await?
        } else {
            let read = streams::read_group(&mut conn, key, GROUP, consumer, ">", count, Some(shared.settings.delivery.block_ms));
            tokio::select! {
                r = read => r?,
                _ = shared.shutdown.cancelled() => break,
            }
        };
        if entries.is_empty() {
            continue;
        }
        apply(&shared.db, &entries).await?;
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        streams::ack(&mut conn, key, GROUP, &ids).await?;
        if last_trim.elapsed() > Duration::from_secs(10) {
            last_trim = std::time::Instant::now();
            if let Err(e) = streams::trim_acked(&mut conn, key, GROUP).await {
                tracing::warn!(error = %e, "trimming the feedback stream failed");
            }
        }
    }
    Ok(())
}

/// Applies a batch exactly once (by outbox id) in one transaction.
pub async fn apply(db: &sqlx::PgPool, entries: &[Entry]) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let oids: Vec<&str> = entries.iter().map(|e| e.oid.as_str()).collect();
    let fresh: Vec<String> = sqlx::query_scalar(
        "insert into processed_message (consumer, message_id) select $1, unnest($2::text[]) on conflict do nothing returning message_id",
    )
    .bind(CONSUMER_KEY)
    .bind(&oids)
    .fetch_all(&mut *tx)
    .await?;
    // a batch may hold the same outbox id twice (a relay re-send): apply each id once
    let mut fresh: std::collections::HashSet<String> = fresh.into_iter().collect();
    let applied = fresh.len();
    let mut transitions: Vec<Transition> = Vec::new();
    let mut reports: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| fresh.remove(&e.oid)) {
        match &e.message {
            Some(Message::TasksTransitioned { items }) => transitions.extend(items.iter().cloned()),
            Some(Message::ReportCreated { report_id, .. }) => {
                metrics::counter!("fieldops_reports_received_total").increment(1);
                reports.push(report_id.clone());
            }
            Some(other) => tracing::warn!(message = ?other, "unexpected message on the feedback stream"),
            None => tracing::error!(entry.id = %e.id, "unreadable feedback entry; skipped"),
        }
    }
    if !transitions.is_empty() {
        apply_transitions(&mut *tx, &transitions).await?;
    }
    let fired = crate::triggers::on_reports(&mut tx, &reports).await?;
    tx.commit().await?;
    metrics::counter!("fieldops_rules_fired_total", "trigger" => "report").increment(fired.len() as u64);
    metrics::counter!("fieldops_feedback_applied_total").increment(applied as u64);
    Ok(())
}
