//! Delivery workers: one reader task per city, each with its own Redis connection, reading the
//! city's stream through the consumer group `delivery`.
//!
//! For `tasks.created`, a batch is marked `delivered` in one transaction that also writes the
//! transition counts to the outbox; the guard `status = 'queued'` makes a redelivered message a
//! no-op, so a task is delivered once however often its message is read. The entry is acked only
//! after the commit; live events go out after that. Entries left pending by a dead worker are
//! taken over with XAUTOCLAIM once idle for `delivery.reclaim_idle_ms`; this process's own
//! pending entries (from before a restart) are read first.

use std::collections::HashMap;
use std::time::Duration;

use fieldops_core::platform::app::Shared;
use fieldops_core::queue::streams::{self, Entry};
use fieldops_core::queue::{self, Message, outbox};
use tokio::task::JoinHandle;

use crate::feed::{self, Event};

pub const GROUP: &str = "delivery";

/// Starts a reader per city and keeps discovering new cities until shutdown.
pub async fn run(shared: Shared) {
    let consumer = if shared.settings.delivery.consumer_name.is_empty() {
        format!("delivery-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
    } else {
        shared.settings.delivery.consumer_name.clone()
    };
    let mut readers: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        match sqlx::query_scalar::<_, String>("select id from city").fetch_all(&shared.db).await {
            Ok(cities) => {
                for city in cities {
                    if !readers.contains_key(&city) {
                        let handle = tokio::spawn(city_reader(shared.clone(), city.clone(), consumer.clone()));
                        readers.insert(city, handle);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing cities for delivery failed"),
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    for (_, h) in readers {
        let _ = h.await;
    }
}

async fn city_reader(shared: Shared, city: String, consumer: String) {
    while !shared.shutdown.is_cancelled() {
        if let Err(e) = read_city(&shared, &city, &consumer).await {
            tracing::warn!(city.id = %city, error = ?e, "delivery reader failed; restarting");
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn read_city(shared: &Shared, city: &str, consumer: &str) -> anyhow::Result<()> {
    let key = shared.keys.city_tasks(city);
    let cfg = &shared.settings.delivery;
    let mut conn = fieldops_core::platform::redis_conn::manager(&shared.redis_client, cfg.block_ms).await?;
    streams::ensure_group(&mut conn, &key, GROUP).await?;
    let mut pending_done = false;
    let mut last_reclaim = std::time::Instant::now();
    let mut last_trim = std::time::Instant::now();
    while !shared.shutdown.is_cancelled() {
        let entries = if !pending_done {
            let e = streams::read_group(&mut conn, &key, GROUP, consumer, "0", cfg.read_count, None).await?;
            pending_done = e.is_empty();
            e
        } else if last_reclaim.elapsed() >= Duration::from_millis(cfg.reclaim_idle_ms) {
            last_reclaim = std::time::Instant::now();
            streams::autoclaim(&mut conn, &key, GROUP, consumer, cfg.reclaim_idle_ms, cfg.read_count).await?
        } else {
            let read = streams::read_group(&mut conn, &key, GROUP, consumer, ">", cfg.read_count, Some(cfg.block_ms));
            tokio::select! {
                r = read => r?,
                _ = shared.shutdown.cancelled() => break,
            }
        };
        for entry in entries {
            // finish the entry in hand even during shutdown: commit, then ack
            let events = handle(shared, &entry).await?;
            streams::ack(&mut conn, &key, GROUP, std::slice::from_ref(&entry.id)).await?;
            feed::publish(shared, &events).await;
        }
        if last_trim.elapsed() > Duration::from_secs(10) {
            last_trim = std::time::Instant::now();
            if let Err(e) = streams::trim_acked(&mut conn, &key, GROUP).await {
                tracing::warn!(error = %e, "trimming a city stream failed");
            }
        }
    }
    Ok(())
}

/// Applies one stream entry to the database; returns the live events to publish.
pub async fn handle(shared: &Shared, entry: &Entry) -> anyhow::Result<Vec<Event>> {
    match &entry.message {
        Some(Message::TasksCreated { directive_id, city_id, task_ids }) => deliver(shared, directive_id, city_id, task_ids).await,
        Some(Message::TasksCancelled { city_id, task_ids, .. }) => {
            let rows: Vec<(String, String, Option<String>, String)> =
                sqlx::query_as("select id, team_id, assignee_id, title from task where id = any($1) and status = 'cancelled'")
                    .bind(task_ids)
                    .fetch_all(&shared.db)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(id, team_id, assignee_id, title)| Event {
                    event: "task.cancelled".into(),
                    task_id: id,
                    city_id: city_id.clone(),
                    team_id,
                    assignee_id,
                    previous_assignee_id: None,
                    status: "cancelled".into(),
                    title,
                })
                .collect())
        }
        Some(other) => {
            tracing::warn!(message = ?other, "unexpected message on a city stream; acked");
            Ok(Vec::new())
        }
        None => {
            tracing::error!(entry.id = %entry.id, "unreadable city stream entry; acked");
            Ok(Vec::new())
        }
    }
}

/// Marks queued tasks delivered (once), with their transition counts, in one transaction.
pub async fn deliver(shared: &Shared, directive_id: &str, city_id: &str, task_ids: &[String]) -> anyhow::Result<Vec<Event>> {
    let mut tx = shared.db.begin().await?;
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "update task set status = 'delivered', delivered_at = now(), updated_at = now()
         where id = any($1) and status = 'queued' returning id, team_id, assignee_id, title",
    )
    .bind(task_ids)
    .fetch_all(&mut *tx)
    .await?;
    if !rows.is_empty() {
        let n = rows.len();
        outbox::transitions(
            &mut tx,
            vec![queue::Transition {
                directive_id: directive_id.into(),
                city_id: city_id.into(),
                from: Some("queued".into()),
                to: "delivered".into(),
                n: n as i64,
            }],
        )
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("fieldops_tasks_delivered_total").increment(rows.len() as u64);
    Ok(rows
        .into_iter()
        .map(|(id, team_id, assignee_id, title)| Event {
            event: "task.assigned".into(),
            task_id: id,
            city_id: city_id.into(),
            team_id,
            assignee_id,
            previous_assignee_id: None,
            status: "delivered".into(),
            title,
        })
        .collect())
}
