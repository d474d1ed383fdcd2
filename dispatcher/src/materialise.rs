//! Directive -> tasks. A pending directive is claimed with `FOR UPDATE SKIP LOCKED` (so replicas
//! never work on the same one), its targets are resolved by geography and the account filter,
//! and the tasks, their outbox messages, the `queued` counts and the directive's new status are
//! written in ONE transaction. A crash anywhere rolls everything back and the directive stays
//! pending; the unique (directive, account) / (directive, team) indexes make a repeat harmless.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use fieldops_core::domain::{Assignment, Target, TaskTemplate, render};
use fieldops_core::filter::{Filter, Literal, Subject, literal_of};
use fieldops_core::platform::app::Shared;
use fieldops_core::queue::{self, Message, Transition, outbox};
use fieldops_core::store::directives::apply_transitions;
use geo::Intersects;
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

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    name: String,
    lat: f64,
    lon: f64,
    city_id: String,
    territory_id: Option<String>,
    owner_id: Option<String>,
    owner_team: Option<String>,
    territory_team: Option<String>,
    attributes: sqlx::types::Json<serde_json::Map<String, Value>>,
}

impl Subject for AccountRow {
    fn get(&self, name: &str) -> Option<Literal> {
        match name {
            "id" => Some(Literal::Str(self.id.clone())),
            "name" => Some(Literal::Str(self.name.clone())),
            "city_id" => Some(Literal::Str(self.city_id.clone())),
            "territory_id" => self.territory_id.clone().map(Literal::Str),
            "owner_id" => self.owner_id.clone().map(Literal::Str),
            other => self.attributes.0.get(other).and_then(literal_of),
        }
    }
}

/// One task to be written.
struct NewTask {
    city_id: String,
    territory_id: Option<String>,
    team_id: String,
    account_id: Option<String>,
    assignee_id: Option<String>,
    title: String,
    instructions: String,
}

#[derive(Clone)]
struct Agent {
    id: String,
    home: Option<(f64, f64)>,
    open: i64,
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
    let (tasks, skipped) = resolve(&mut tx, &target, &template, assignment).await?;
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

async fn resolve(tx: &mut PgConnection, target: &Target, template: &TaskTemplate, assignment: Assignment) -> anyhow::Result<(Vec<NewTask>, Vec<Value>)> {
    let cities: Vec<String> = if target.cities.is_empty() {
        sqlx::query_scalar("select id from city order by id").fetch_all(&mut *tx).await?
    } else {
        target.cities.clone()
    };
    let area = match &target.area {
        Some(a) => Some(fieldops_core::geo::parse_area(a, "target.area").map_err(|e| anyhow::anyhow!(e.message))?),
        None => None,
    };
    // agents by team, with their open load (counted only where the policy needs it)
    let agent_rows: Vec<(String, String, Option<f64>, Option<f64>, i64)> = sqlx::query_as(
        "select u.id, u.team_id, u.home_lat, u.home_lon,
                case when $2 then (select count(*) from task t where t.assignee_id = u.id and t.status in ('queued', 'delivered', 'accepted', 'checked_in')) else 0 end
         from app_user u where u.role = 'agent' and u.city_id = any($1) order by u.id",
    )
    .bind(&cities)
    .bind(assignment == Assignment::LeastLoaded)
    .fetch_all(&mut *tx)
    .await?;
    let mut agents: HashMap<String, Vec<Agent>> = HashMap::new();
    for (id, team, lat, lon, open) in agent_rows {
        agents.entry(team).or_default().push(Agent { id, home: lat.zip(lon), open });
    }
    let first_team: HashMap<String, String> = sqlx::query_as::<_, (String, String)>("select distinct on (city_id) city_id, id from team where city_id = any($1) order by city_id, id")
        .bind(&cities)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let mut tasks = Vec::new();
    let mut skipped = Vec::new();
    let render_all = |a: Option<&AccountRow>, city: &str, territory: Option<&str>, team: &str| {
        let values = [
            ("account.name", a.map(|a| a.name.as_str()).unwrap_or("")),
            ("account.id", a.map(|a| a.id.as_str()).unwrap_or("")),
            ("city_id", city),
            ("territory_id", territory.unwrap_or("")),
            ("team_id", team),
        ];
        (render(&template.title, &values), render(&template.instructions, &values))
    };

    match &target.accounts {
        Some(expr) => {
            let filter = Filter::parse(expr).map_err(|e| anyhow::anyhow!("target.accounts: {e}"))?;
            let accounts: Vec<AccountRow> = sqlx::query_as(
                "select a.id, a.name, a.lat, a.lon, a.city_id, a.territory_id, a.owner_id, u.team_id as owner_team,
                        t.team_id as territory_team, a.attributes
                 from account a left join territory t on t.id = a.territory_id left join app_user u on u.id = a.owner_id and u.role = 'agent'
                 where a.city_id = any($1) and (cardinality($2::text[]) = 0 or a.territory_id = any($2)) order by a.id",
            )
            .bind(&cities)
            .bind(&target.territories)
            .fetch_all(&mut *tx)
            .await?;
            for a in accounts.iter().filter(|a| filter.matches(*a)) {
                if let Some(area) = &area {
                    if !area.intersects(&geo::Point::new(a.lon, a.lat)) {
                        continue;
                    }
                }
                let owner_ok = a.owner_team.is_some();
                let team = match (assignment, owner_ok) {
                    (Assignment::Owner, true) => a.owner_team.clone(),
                    _ => a.territory_team.clone().or_else(|| a.owner_team.clone()).or_else(|| first_team.get(&a.city_id).cloned()),
                };
                let Some(team) = team else {
                    skipped.push(json!({"account_id": a.id, "city_id": a.city_id, "reason": "no team in the account's city"}));
                    continue;
                };
                let team_agents = agents.get_mut(&team);
                let assignee = match assignment {
                    Assignment::Owner => a.owner_id.clone().filter(|_| owner_ok),
                    Assignment::Pool => None,
                    Assignment::Nearest => team_agents.and_then(|ag| nearest(ag, a.lat, a.lon)),
                    Assignment::LeastLoaded => team_agents.and_then(least_loaded),
                };
                let (title, instructions) = render_all(Some(a), &a.city_id, a.territory_id.as_deref(), &team);
                tasks.push(NewTask {
                    city_id: a.city_id.clone(),
                    territory_id: a.territory_id.clone(),
                    team_id: team,
                    account_id: Some(a.id.clone()),
                    assignee_id: assignee,
                    title,
                    instructions,
                });
            }
        }
        None => {
            // one task per team in the targeted places
            let teams: Vec<(String, String)> = sqlx::query_as(
                "select distinct tm.id, tm.city_id from team tm
                 where tm.city_id = any($1)
                   and (cardinality($2::text[]) = 0 or exists (select 1 from territory t where t.team_id = tm.id and t.id = any($2)))
                 order by tm.id",
            )
            .bind(&cities)
            .bind(&target.territories)
            .fetch_all(&mut *tx)
            .await?;
            for (team, city) in teams {
                let assignee = match assignment {
                    Assignment::LeastLoaded => agents.get_mut(&team).and_then(least_loaded),
                    _ => None,
                };
                let (title, instructions) = render_all(None, &city, None, &team);
                tasks.push(NewTask { city_id: city, territory_id: None, team_id: team, account_id: None, assignee_id: assignee, title, instructions });
            }
        }
    }
    Ok((tasks, skipped))
}

/// The agent whose home is nearest (great-circle), ties to the smaller id; agents without a home are not candidates.
fn nearest(agents: &mut [Agent], lat: f64, lon: f64) -> Option<String> {
    let best = agents
        .iter_mut()
        .filter_map(|a| a.home.map(|h| (fieldops_core::geo::distance_m(h, (lat, lon)), a)))
        .min_by(|(d1, a1), (d2, a2)| d1.total_cmp(d2).then_with(|| a1.id.cmp(&a2.id)))?;
    best.1.open += 1;
    Some(best.1.id.clone())
}

/// The agent with the fewest open tasks, ties to the smaller id; counts the new task at once.
fn least_loaded(agents: &mut Vec<Agent>) -> Option<String> {
    let a = agents.iter_mut().min_by(|a, b| a.open.cmp(&b.open).then_with(|| a.id.cmp(&b.id)))?;
    a.open += 1;
    Some(a.id.clone())
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
