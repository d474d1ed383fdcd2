//! Directive -> tasks. A pending directive is claimed with `FOR UPDATE SKIP LOCKED` (so replicas
//! never work on the same one), its targets are resolved by geography and the account filter,
//! and the tasks, their outbox messages, the `queued` counts and the directive's new status are
//! written in ONE transaction. A crash anywhere rolls everything back and the directive stays
//! pending; the unique (directive, account) / (directive, team) indexes make a repeat harmless.

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

/// Materialises the oldest pending directive, if any; returns its id.
pub async fn materialise_next(pool: &PgPool, batch_size: usize) -> anyhow::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, sqlx::types::Json<Value>, sqlx::types::Json<Value>, String, Option<String>)> = sqlx::query_as(
        "select id, target, task_template, assignment, rule_id from directive where status = 'pending'
         order by created_at limit 1 for update skip locked",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, target, template, assignment, rule_id)) = row else { return Ok(None) };
    let started = std::time::Instant::now();
    let parsed: Result<(Target, TaskTemplate, Assignment), serde_json::Error> = (|| {
        Ok((serde_json::from_value(target.0)?, serde_json::from_value(template.0)?, serde_json::from_value(Value::String(assignment))?))
    })();
    let (target, template, assignment) = match parsed {
        Ok(p) => p,
        Err(e) => {
            sqlx::query("update directive set status = 'failed', error = $2 where id = $1").bind(&id).bind(e.to_string()).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(Some(id));
        }
    };
    let Resolution { tasks, skipped } = resolve(&mut tx, &target, &template, assignment).await?;
    let due_at = Utc::now() + fieldops_core::domain::Duration::parse(&template.due_in).map(|d| d.0).unwrap_or(chrono::Duration::hours(24));
    let created = insert_tasks(&mut tx, &id, rule_id.as_deref(), &template, due_at, &tasks).await?;
    // outbox: per city, chunks of batch_size task ids
    let mut by_city: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (task_id, city) in &created {
        by_city.entry(city.clone()).or_default().push(task_id.clone());
    }
    let mut messages = Vec::new();
    let mut counts = Vec::new();
    for (city, ids) in &by_city {
        counts.push(Transition { directive_id: id.clone(), city_id: city.clone(), from: None, to: "queued".into(), n: ids.len() as i64 });
        for chunk in ids.chunks(batch_size) {
            messages.push((queue::city_stream(city), Message::TasksCreated { directive_id: id.clone(), city_id: city.clone(), task_ids: chunk.to_vec() }));
        }
    }
    outbox::enqueue_many(&mut tx, &messages).await?;
    apply_transitions(&mut *tx, &counts).await?;
    sqlx::query("update directive set status = 'dispatched', dispatched_at = clock_timestamp(), task_total = task_total + $2, skipped = $3 where id = $1")
        .bind(&id)
        .bind(created.len() as i32)
        .bind(sqlx::types::Json(&skipped))
        .execute(&mut *tx)
        .await?;
    fieldops_core::store::audit::record(&mut tx, None, "directive.dispatch", "directive", &id, None, json!({"tasks": created.len(), "skipped": skipped.len()})).await?;
    tx.commit().await?;
    metrics::counter!("fieldops_tasks_materialised_total").increment(created.len() as u64);
    tracing::info!(directive.id = %id, tasks = created.len(), skipped = skipped.len(), ms = started.elapsed().as_millis() as u64, "directive materialised");
    Ok(Some(id))
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
    for chunk in tasks.chunks(5_000) {
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
