//! Directive -> tasks. A dispatcher claims a pending directive under a lease (`dispatching`,
//! `lease_owner`, `lease_until`; taken with `FOR UPDATE SKIP LOCKED`, so replicas never work on the
//! same one), resolves its targets by geography and the account filter, and writes the tasks in
//! chunks: each chunk's tasks, their outbox messages and the `queued` counts in ONE transaction
//! that first re-locks the directive and checks it is still ours and not cancelled. Delivery of
//! the first chunk starts while later ones are written. A crash leaves the lease to expire;
//! the next dispatcher resolves again and the unique (directive, account) / (directive, team)
//! indexes skip every task that exists, so each target gets its task exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use fieldops_core::dispatch::{NewTask, Resolution, resolve};
use fieldops_core::domain::{Assignment, Target, TaskTemplate};
use fieldops_core::platform::app::Shared;
use fieldops_core::queue::{self, Message, Transition, outbox};
use fieldops_core::store::directives::apply_transitions;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::wake::Wake;

pub async fn run(shared: Shared) {
    let mut wake = Wake::new(&shared.db, "fieldops_directive", Duration::from_millis(shared.settings.dispatch.poll_interval_ms)).await;
    loop {
        loop {
            if shared.shutdown.is_cancelled() {
                return;
            }
            match materialise_next(&shared.db, shared.settings.dispatch.batch_size).await {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = ?e, "materialising a directive failed; will retry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        if !wake.wait(&shared.shutdown).await {
            return;
        }
    }
}

/// Tasks written per transaction.
const CHUNK: usize = 5_000;
/// A claim lasts this long without renewal (renewed by every chunk).
const LEASE: &str = "60 seconds";

/// A claimed directive, parsed.
pub struct Claim {
    pub id: String,
    pub owner: String,
    pub rule_id: Option<String>,
    pub target: Target,
    pub template: TaskTemplate,
    pub assignment: Assignment,
}

/// Claims the oldest pending directive (or one whose dispatcher's lease expired) for `owner`.
/// A directive whose stored body no longer parses is marked `failed` and skipped.
pub async fn claim(pool: &PgPool, owner: &str) -> anyhow::Result<Option<Claim>> {
    loop {
        let row: Option<(String, sqlx::types::Json<Value>, sqlx::types::Json<Value>, String, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "update directive set status = 'dispatching', lease_owner = $1, lease_until = clock_timestamp() + interval '{LEASE}'
             where id = (select id from directive
                         where status = 'pending' or (status = 'dispatching' and lease_until < clock_timestamp())
                         order by created_at limit 1 for no key update skip locked)
             returning id, target, task_template, assignment, rule_id"
            )))
            .bind(owner)
            .fetch_optional(pool)
            .await?;
        let Some((id, target, template, assignment, rule_id)) = row else { return Ok(None) };
        let parsed: Result<(Target, TaskTemplate, Assignment), serde_json::Error> = (|| {
            Ok((serde_json::from_value(target.0)?, serde_json::from_value(template.0)?, serde_json::from_value(Value::String(assignment))?))
        })();
        match parsed {
            Ok((target, template, assignment)) => {
                return Ok(Some(Claim { id, owner: owner.to_string(), rule_id, target, template, assignment }));
            }
            Err(e) => {
                sqlx::query("update directive set status = 'failed', error = $2 where id = $1")
                    .bind(&id)
                    .bind(e.to_string())
                    .execute(pool)
                    .await?;
            }
        }
    }
}

/// Writes one chunk (tasks, outbox, counts) if the claim still holds; returns how many tasks
/// were created, or None when the directive was cancelled or taken over.
pub async fn write_chunk(
    pool: &PgPool,
    c: &Claim,
    due_at: chrono::DateTime<Utc>,
    chunk: &[NewTask],
    batch_size: usize,
) -> anyhow::Result<Option<usize>> {
    let mut tx = pool.begin().await?;
    if !still_ours(&mut tx, &c.id, &c.owner).await? {
        return Ok(None);
    }
    let created = insert_tasks(&mut tx, &c.id, c.rule_id.as_deref(), &c.template, due_at, chunk).await?;
    announce(&mut tx, &c.id, &created, batch_size).await?;
    tx.commit().await?;
    metrics::counter!("fieldops_tasks_materialised_total").increment(created.len() as u64);
    Ok(Some(created.len()))
}

/// Materialises the next claimable directive, if any; returns its id.
pub async fn materialise_next(pool: &PgPool, batch_size: usize) -> anyhow::Result<Option<String>> {
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let Some(c) = claim(pool, &owner).await? else { return Ok(None) };
    let started = std::time::Instant::now();
    let Resolution { tasks, skipped } = {
        let mut conn = pool.acquire().await?;
        resolve(&mut conn, &c.target, &c.template, c.assignment).await?
    };
    let due_at =
        Utc::now() + fieldops_core::domain::Duration::parse(&c.template.due_in).map(|d| d.0).unwrap_or(chrono::Duration::hours(24));
    let mut created_total = 0;
    for chunk in tasks.chunks(CHUNK) {
        match write_chunk(pool, &c, due_at, chunk, batch_size).await? {
            Some(n) => created_total += n,
            None => {
                tracing::info!(directive.id = %c.id, "directive cancelled or taken over while materialising; stopping");
                return Ok(Some(c.id));
            }
        }
    }
    let mut tx = pool.begin().await?;
    if !still_ours(&mut tx, &c.id, &c.owner).await? {
        return Ok(Some(c.id));
    }
    sqlx::query(
        "update directive set status = 'dispatched', dispatched_at = clock_timestamp(), lease_owner = null, lease_until = null,
           task_total = (select count(*) from task where directive_id = $1), skipped = $2 where id = $1",
    )
    .bind(&c.id)
    .bind(sqlx::types::Json(&skipped))
    .execute(&mut *tx)
    .await?;
    fieldops_core::store::audit::record(
        &mut tx,
        None,
        "directive.dispatch",
        "directive",
        &c.id,
        None,
        json!({"tasks": created_total, "skipped": skipped.len()}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(directive.id = %c.id, tasks = created_total, skipped = skipped.len(), ms = started.elapsed().as_millis() as u64, "directive materialised");
    Ok(Some(c.id))
}

/// Locks the directive row; true while it is still ours to write (not cancelled, lease held),
/// and renews the lease. `FOR NO KEY UPDATE`, not `FOR UPDATE`: the feedback consumer inserting a
/// `directive_count` row takes a key-share lock on the directive (its foreign key) while holding
/// count rows this chunk will update; a full `FOR UPDATE` here would deadlock with it.
async fn still_ours(tx: &mut PgConnection, id: &str, owner: &str) -> anyhow::Result<bool> {
    let row: Option<(String, Option<String>)> = sqlx::query_as("select status, lease_owner from directive where id = $1 for no key update")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let ours = matches!(&row, Some((status, lease)) if status == "dispatching" && lease.as_deref() == Some(owner));
    if ours {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "update directive set lease_until = clock_timestamp() + interval '{LEASE}' where id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(ours)
}

/// Outbox messages (per city, `batch_size` task ids each) and `queued` counts for created tasks.
async fn announce(tx: &mut PgConnection, id: &str, created: &[(String, String)], batch_size: usize) -> anyhow::Result<()> {
    let mut by_city: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (task_id, city) in created {
        by_city.entry(city.as_str()).or_default().push(task_id.clone());
    }
    let mut messages = Vec::new();
    let mut counts = Vec::new();
    for (city, ids) in &by_city {
        counts.push(Transition {
            directive_id: id.to_string(),
            city_id: city.to_string(),
            from: None,
            to: "queued".into(),
            n: ids.len() as i64,
        });
        for chunk in ids.chunks(batch_size) {
            messages.push((
                queue::city_stream(city),
                Message::TasksCreated { directive_id: id.to_string(), city_id: city.to_string(), task_ids: chunk.to_vec() },
            ));
        }
    }
    outbox::enqueue_many(&mut *tx, &messages).await?;
    apply_transitions(&mut *tx, &counts).await?;
    Ok(())
}

/// Inserts in chunks; returns (task id, city) of the rows actually created.
async fn insert_tasks(
    tx: &mut PgConnection,
    directive_id: &str,
    rule_id: Option<&str>,
    template: &TaskTemplate,
    due_at: chrono::DateTime<Utc>,
    tasks: &[NewTask],
) -> anyhow::Result<Vec<(String, String)>> {
    let form = serde_json::to_value(&template.form)?;
    let mut created = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|_| fieldops_core::domain::new_id("task")).collect();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "insert into task (id, directive_id, rule_id, city_id, territory_id, team_id, account_id, assignee_id, status,
                               priority, title, instructions, form, require_checkin, due_at)
             select x.id, $1, $2, x.city_id, x.territory_id, x.team_id, x.account_id, x.assignee_id, 'queued',
                    $3, x.title, x.instructions, $4, $5, $6
             from unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
                  as x(id, city_id, territory_id, team_id, account_id, assignee_id, title, instructions)
             on conflict do nothing
             returning id, city_id",
        )
        .bind(directive_id)
        .bind(rule_id)
        .bind(template.priority.as_str())
        .bind(&form)
        .bind(template.require_checkin)
        .bind(due_at)
        .bind(&ids)
        .bind(chunk.iter().map(|t| t.city_id.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.territory_id.as_deref()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.team_id.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.account_id.as_deref()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.assignee_id.as_deref()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.title.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|t| t.instructions.as_str()).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        created.extend(rows);
    }
    Ok(created)
}
