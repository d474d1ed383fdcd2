//! Strategy rules: saved with versions (expressions and schedules checked at save), previewed
//! without writing anything, fired by hand; cron and report triggers fire in the dispatcher.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::dispatch::{Resolution, resolve};
use fieldops_core::domain::{RuleIn, TaskStatus};
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{LimitedBody, Page, list_response, parse_json};
use fieldops_core::platform::idempotency;
use fieldops_core::store::rules::{self, RULE_COLUMNS, RuleOut, RuleRow};
use fieldops_core::store::{audit, directives};
use serde_json::json;
use sqlx::PgPool;

const WRITERS: [Role; 2] = [Role::Admin, Role::HqStrategist];
const READERS: [Role; 3] = [Role::Admin, Role::HqStrategist, Role::Coo];

async fn checked(tx: &mut sqlx::PgConnection, body: &[u8]) -> Result<RuleIn, ApiError> {
    let rule: RuleIn = parse_json(body)?;
    rule.validate()?;
    super::directives::check_target_refs(tx, &rule.target).await?;
    rules::check_expressions(tx, &rule).await?;
    Ok(rule)
}

#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = RuleIn,
    responses((status = 201, body = RuleOut), (status = 409), (status = 422, description = "expression errors carry position, line, column")))]
pub async fn create(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let key = idempotency::key_of(&req, &p.user_id, &body.0)?;
    let mut tx = pool.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let rule = checked(&mut tx, &body.0).await?;
    let row = rules::create(&mut tx, &rule, &p.user_id).await?;
    audit::record(&mut tx, Some(&p.user_id), "rule.create", "rule", &row.id, None, json!({"version": 1, "enabled": rule.enabled})).await?;
    let out = serde_json::to_value(RuleOut::from(row)).expect("serialises");
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::CREATED, out).await?;
    tx.commit().await?;
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [rule], next_cursor}")))]
pub async fn list(p: Principal, pool: web::Data<PgPool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    let limit = page.limit()?;
    let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {RULE_COLUMNS} from rule where deleted_at is null and ($1::text is null or id < $1) order by id desc limit $2"
    )))
    .bind(&page.cursor)
    .bind(limit + 1)
    .fetch_all(pool.get_ref())
    .await?;
    let (rows, next) = fieldops_core::store::tasks::page(rows, limit, |r| r.id.clone());
    Ok(list_response(rows.into_iter().map(RuleOut::from).collect(), next))
}

#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", responses((status = 200, body = RuleOut), (status = 404)))]
pub async fn get(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    let mut conn = pool.acquire().await?;
    let row = rules::get(&mut conn, &path, false).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    Ok(HttpResponse::Ok().json(RuleOut::from(row)))
}

#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", request_body = RuleIn,
    responses((status = 200, body = RuleOut, description = "a new version"), (status = 404), (status = 422)))]
pub async fn update(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let mut tx = pool.begin().await?;
    let old = rules::get(&mut tx, &path, true).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    let rule = checked(&mut tx, &body.0).await?;
    let row = rules::update(&mut tx, &path, &rule, &p.user_id).await?;
    audit::record(&mut tx, Some(&p.user_id), "rule.update", "rule", &path, None, json!({"version": row.version})).await?;
    if old.enabled != rule.enabled {
        let action = if rule.enabled { "rule.enable" } else { "rule.disable" };
        audit::record(&mut tx, Some(&p.user_id), action, "rule", &path, None, json!({"version": row.version})).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(RuleOut::from(row)))
}

#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", responses((status = 204), (status = 404)))]
pub async fn delete(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let mut tx = pool.begin().await?;
    let done = sqlx::query("update rule set deleted_at = now(), enabled = false, cron_next_at = null where id = $1 and deleted_at is null")
        .bind(path.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(ApiError::not_found("rule"));
    }
    audit::record(&mut tx, Some(&p.user_id), "rule.delete", "rule", &path, None, json!({})).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/rules/{id}/preview", tag = "rules",
    responses((status = 200, description = "{tasks, by_city: [{city_id, tasks, agents, territories}], load: [{agent_id, open, new}], skipped, sample: [task]}; writes nothing"), (status = 404)))]
pub async fn preview(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    // a read-only transaction: nothing a preview does can be written
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction read only").execute(&mut *tx).await?;
    let rule = rules::get(&mut tx, &path, false).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    let body = &rule.body.0;
    let Resolution { tasks, skipped } = resolve(&mut tx, &body.target, &body.task, body.assignment).await.map_err(ApiError::internal)?;
    let assignees: Vec<String> = tasks.iter().filter_map(|t| t.assignee_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let open: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select assignee_id, count(*) from task where assignee_id = any($1) and status = any($2) group by 1",
    )
    .bind(&assignees)
    .bind(&TaskStatus::OPEN[..])
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    tx.rollback().await?;
    let mut by_city: BTreeMap<&str, (usize, BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let mut new_load: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &tasks {
        let c = by_city.entry(t.city_id.as_str()).or_default();
        c.0 += 1;
        if let Some(a) = &t.assignee_id {
            c.1.insert(a);
            *new_load.entry(a).or_default() += 1;
        }
        if let Some(terr) = &t.territory_id {
            c.2.insert(terr);
        }
    }
    let by_city: Vec<_> = by_city
        .into_iter()
        .map(|(city, (n, agents, terrs))| json!({"city_id": city, "tasks": n, "agents": agents.len(), "territories": terrs.len(), "pool": n - tasks.iter().filter(|t| t.city_id == city && t.assignee_id.is_some()).count()}))
        .collect();
    let load: Vec<_> = new_load.iter().map(|(a, n)| json!({"agent_id": a, "open": open.get(*a).copied().unwrap_or(0), "new": n})).collect();
    let due_at = chrono::Utc::now() + fieldops_core::domain::Duration::parse(&body.task.due_in).map(|d| d.0).unwrap_or_default();
    let sample: Vec<_> = tasks
        .iter()
        .take(10)
        .map(|t| {
            json!({"city_id": t.city_id, "territory_id": t.territory_id, "team_id": t.team_id, "account_id": t.account_id,
                   "assignee_id": t.assignee_id, "title": t.title, "instructions": t.instructions, "priority": body.task.priority.as_str(),
                   "due_at": due_at, "require_checkin": body.task.require_checkin})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"rule_id": rule.id, "rule_version": rule.version, "tasks": tasks.len(), "by_city": by_city, "load": load, "skipped": skipped, "sample": sample})))
}

#[utoipa::path(post, path = "/api/v1/rules/{id}/fire", tag = "rules",
    responses((status = 202, body = directives::DirectiveOut), (status = 404), (status = 409, description = "the rule is disabled")))]
pub async fn fire(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let key = idempotency::key_of(&req, &p.user_id, b"")?;
    let mut tx = pool.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let rule = rules::get(&mut tx, &path, true).await?.ok_or_else(|| ApiError::not_found("rule"))?;
    if !rule.enabled {
        return Err(ApiError::conflict("rule_disabled", "enable the rule before firing it"));
    }
    let target = rule.body.0.target.clone();
    let id = rules::fire(&mut tx, &rule, &target, Some(&p.user_id), json!({"by": "hand"})).await?;
    let out = super::directives::directive_in_tx(&mut tx, &id).await?;
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::ACCEPTED, out).await?;
    tx.commit().await?;
    Ok(resp)
}
