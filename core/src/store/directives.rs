//! Directives and their execution counts (maintained by the dispatcher's feedback consumer in
//! `directive_count`; `overdue` is read live from open tasks past their due time).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor, PgPool};

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub queued: i64,
    pub delivered: i64,
    pub accepted: i64,
    pub checked_in: i64,
    pub completed: i64,
    pub rejected: i64,
    pub overdue: i64,
    pub cancelled: i64,
}

impl Counts {
    fn add(&mut self, status: &str, n: i64) {
        match status {
            "queued" => self.queued += n,
            "delivered" => self.delivered += n,
            "accepted" => self.accepted += n,
            "checked_in" => self.checked_in += n,
            "completed" => self.completed += n,
            "rejected" => self.rejected += n,
            "cancelled" => self.cancelled += n,
            "overdue" => self.overdue += n,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CityCounts {
    pub city_id: String,
    pub counts: Counts,
}

#[derive(Debug, Clone, FromRow)]
pub struct DirectiveRow {
    pub id: String,
    pub name: String,
    pub rule_id: Option<String>,
    pub rule_version: Option<i32>,
    pub status: String,
    pub target: sqlx::types::Json<serde_json::Value>,
    pub task_template: sqlx::types::Json<serde_json::Value>,
    pub assignment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub task_total: i32,
    pub skipped: sqlx::types::Json<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DirectiveOut {
    pub id: String,
    pub name: String,
    pub rule_id: Option<String>,
    pub rule_version: Option<i32>,
    /// `pending` (accepted), `dispatching` (tasks being written and delivered), `dispatched`
    /// (every task written), `cancelled`, `failed`.
    pub status: String,
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    #[schema(value_type = Object)]
    pub task: serde_json::Value,
    pub assignment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub tasks: i32,
    /// Targets that could not get a task (e.g. no team in the territory), with the reason.
    #[schema(value_type = Vec<Object>)]
    pub skipped: serde_json::Value,
    pub error: Option<String>,
    pub counts: Counts,
    pub by_city: Vec<CityCounts>,
}

pub const DIRECTIVE_COLUMNS: &str = "id, name, rule_id, rule_version, status, target, task_template, assignment, created_by,
    created_at, dispatched_at, cancelled_at, task_total, skipped, error";

fn out(r: DirectiveRow, by_city: Vec<CityCounts>) -> DirectiveOut {
    let mut counts = Counts::default();
    for c in &by_city {
        let k = &c.counts;
        for (s, n) in [
            ("queued", k.queued),
            ("delivered", k.delivered),
            ("accepted", k.accepted),
            ("checked_in", k.checked_in),
            ("completed", k.completed),
            ("rejected", k.rejected),
            ("cancelled", k.cancelled),
            ("overdue", k.overdue),
        ] {
            counts.add(s, n);
        }
    }
    DirectiveOut {
        id: r.id,
        name: r.name,
        rule_id: r.rule_id,
        rule_version: r.rule_version,
        status: r.status,
        target: r.target.0,
        task: r.task_template.0,
        assignment: r.assignment,
        created_by: r.created_by,
        created_at: r.created_at,
        dispatched_at: r.dispatched_at,
        cancelled_at: r.cancelled_at,
        tasks: r.task_total,
        skipped: r.skipped.0,
        error: r.error,
        counts,
        by_city,
    }
}

/// Per-city counts of many directives: rollup rows plus live overdue counts.
async fn counts_for(pool: &PgPool, ids: &[String]) -> Result<BTreeMap<String, Vec<CityCounts>>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select directive_id, city_id, status, n from directive_count where directive_id = any($1)
         union all
         select directive_id, city_id, 'overdue', count(*) from task
          where directive_id = any($1) and status in ('queued', 'delivered', 'accepted', 'checked_in') and due_at < now()
          group by directive_id, city_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut map: BTreeMap<String, BTreeMap<String, Counts>> = BTreeMap::new();
    for (d, c, s, n) in rows {
        map.entry(d).or_default().entry(c).or_default().add(&s, n);
    }
    Ok(map
        .into_iter()
        .map(|(d, cities)| (d, cities.into_iter().map(|(city_id, counts)| CityCounts { city_id, counts }).collect()))
        .collect())
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<DirectiveOut>, sqlx::Error> {
    let row: Option<DirectiveRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("select {DIRECTIVE_COLUMNS} from directive where id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut counts = counts_for(pool, std::slice::from_ref(&row.id)).await?;
    let by_city = counts.remove(&row.id).unwrap_or_default();
    Ok(Some(out(row, by_city)))
}

pub async fn list(pool: &PgPool, cursor: Option<&str>, limit: i64) -> Result<(Vec<DirectiveOut>, Option<String>), sqlx::Error> {
    let rows: Vec<DirectiveRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {DIRECTIVE_COLUMNS} from directive where ($1::text is null or id < $1) order by id desc limit $2"
    )))
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut counts = counts_for(pool, &ids).await?;
    let items: Vec<DirectiveOut> = rows
        .into_iter()
        .map(|r| {
            let by_city = counts.remove(&r.id).unwrap_or_default();
            out(r, by_city)
        })
        .collect();
    Ok(super::tasks::page(items, limit, |d| d.id.clone()))
}

/// Applies count deltas (from -> to) in the caller's transaction. Rows are written in one fixed
/// order, so concurrent writers (a materialising chunk, the feedback consumer) take their row
/// locks in the same order and cannot deadlock.
pub async fn apply_transitions<'e>(db: impl PgExecutor<'e>, items: &[crate::queue::Transition]) -> Result<(), sqlx::Error> {
    let mut d = Vec::new();
    let mut c = Vec::new();
    let mut s = Vec::new();
    let mut n = Vec::new();
    for t in items {
        if let Some(from) = &t.from {
            d.push(t.directive_id.clone());
            c.push(t.city_id.clone());
            s.push(from.clone());
            n.push(-t.n);
        }
        d.push(t.directive_id.clone());
        c.push(t.city_id.clone());
        s.push(t.to.clone());
        n.push(t.n);
    }
    sqlx::query(
        "insert into directive_count (directive_id, city_id, status, n)
         select d, c, s, sum(n) from unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) as x(d, c, s, n) group by d, c, s order by d, c, s
         on conflict (directive_id, city_id, status) do update set n = directive_count.n + excluded.n",
    )
    .bind(&d)
    .bind(&c)
    .bind(&s)
    .bind(&n)
    .execute(db)
    .await?;
    Ok(())
}

/// Stores a directive as `pending` (the dispatcher materialises it); returns its id.
pub async fn insert(
    conn: &mut sqlx::PgConnection,
    name: &str,
    target: &crate::domain::Target,
    task: &crate::domain::TaskTemplate,
    assignment: crate::domain::Assignment,
    created_by: &str,
    rule: Option<(&str, i32)>,
) -> Result<String, sqlx::Error> {
    let id = crate::domain::new_id("dir");
    sqlx::query(
        "insert into directive (id, name, rule_id, rule_version, status, target, task_template, assignment, created_by)
         values ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(name)
    .bind(rule.map(|r| r.0))
    .bind(rule.map(|r| r.1))
    .bind(sqlx::types::Json(target))
    .bind(sqlx::types::Json(task))
    .bind(assignment.as_str())
    .bind(created_by)
    .execute(conn)
    .await?;
    Ok(id)
}
