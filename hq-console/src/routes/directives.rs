//! Directives: HQ's orders. Accepted here (202, status `pending`), materialised into tasks by the
//! dispatcher, tracked with live counts, cancellable.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::domain::{DirectiveIn, TaskStatus};
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{LimitedBody, Page, list_response, parse_json};
use fieldops_core::platform::idempotency;
use fieldops_core::queue::{self, Message, outbox};
use fieldops_core::store::{audit, directives, tasks};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;

const WRITERS: [Role; 2] = [Role::Admin, Role::HqStrategist];
const READERS: [Role; 3] = [Role::Admin, Role::HqStrategist, Role::Coo];

#[utoipa::path(post, path = "/api/v1/directives", tag = "directives", request_body = DirectiveIn,
    responses((status = 202, body = directives::DirectiveOut), (status = 400), (status = 409), (status = 422)))]
pub async fn create(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let input: DirectiveIn = parse_json(&body.0)?;
    input.validate()?;
    let key = idempotency::key_of(&req, &p.user_id, &body.0)?;
    let mut tx = pool.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    check_target_refs(&mut tx, &input.target).await?;
    fieldops_core::store::rules::check_template_attributes(&mut tx, &input.task).await?;
    if let Some(src) = &input.target.accounts {
        fieldops_core::store::rules::compile_account_filter(&mut tx, src, "target.accounts").await?;
    }
    let id = directives::insert(&mut tx, &input.name, &input.target, &input.task, input.assignment, &p.user_id, None).await?;
    audit::record(&mut tx, Some(&p.user_id), "directive.create", "directive", &id, None, json!({"name": input.name})).await?;
    let out = directive_in_tx(&mut tx, &id).await?;
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::ACCEPTED, out).await?;
    tx.commit().await?;
    Ok(resp)
}

pub async fn directive_in_tx(tx: &mut sqlx::PgConnection, id: &str) -> Result<serde_json::Value, ApiError> {
    let row: directives::DirectiveRow =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("select {} from directive where id = $1", directives::DIRECTIVE_COLUMNS)))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    Ok(json!({
        "id": row.id, "name": row.name, "rule_id": row.rule_id, "rule_version": row.rule_version, "status": row.status,
        "target": row.target.0, "task": row.task_template.0, "assignment": row.assignment, "created_by": row.created_by,
        "created_at": row.created_at, "dispatched_at": row.dispatched_at, "cancelled_at": row.cancelled_at,
        "tasks": row.task_total, "skipped": row.skipped.0, "error": row.error,
        "counts": directives::Counts::default(), "by_city": []
    }))
}

/// Checks that the cities and territories a target names exist (422 naming the entry).
pub async fn check_target_refs(tx: &mut sqlx::PgConnection, target: &fieldops_core::domain::Target) -> Result<(), ApiError> {
    if !target.cities.is_empty() {
        let known: Vec<String> =
            sqlx::query_scalar("select id from city where id = any($1)").bind(&target.cities).fetch_all(&mut *tx).await?;
        if let Some((i, c)) = target.cities.iter().enumerate().find(|(_, c)| !known.contains(c)) {
            return Err(ApiError::unprocessable("unknown_city", format!("target.cities[{i}]"), format!("no city '{c}'")));
        }
    }
    if !target.territories.is_empty() {
        let known: Vec<String> =
            sqlx::query_scalar("select id from territory where id = any($1)").bind(&target.territories).fetch_all(&mut *tx).await?;
        if let Some((i, t)) = target.territories.iter().enumerate().find(|(_, t)| !known.contains(t)) {
            return Err(ApiError::unprocessable("unknown_territory", format!("target.territories[{i}]"), format!("no territory '{t}'")));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/directives", tag = "directives", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [directive], next_cursor}")))]
pub async fn list(p: Principal, pool: web::Data<PgPool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    let (items, next) = directives::list(&pool, page.cursor.as_deref(), page.limit()?).await?;
    Ok(list_response(items, next))
}

#[utoipa::path(get, path = "/api/v1/directives/{id}", tag = "directives", responses((status = 200, body = directives::DirectiveOut), (status = 404)))]
pub async fn get(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    let d = directives::get(&pool, &path).await?.ok_or_else(|| ApiError::not_found("directive"))?;
    Ok(HttpResponse::Ok().json(d))
}

#[derive(Debug, Deserialize)]
pub struct TaskQuery {
    pub city_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/directives/{id}/tasks", tag = "directives",
    params(("city_id" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [task], next_cursor}"), (status = 404)))]
pub async fn tasks(
    p: Principal,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    q: web::Query<TaskQuery>,
) -> Result<HttpResponse, ApiError> {
    p.require(&READERS)?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from directive where id = $1)").bind(path.as_str()).fetch_one(pool.get_ref()).await?;
    if !exists {
        return Err(ApiError::not_found("directive"));
    }
    if let Some(s) = &q.status
        && TaskStatus::parse(s).is_none()
    {
        return Err(ApiError::bad_request("invalid_query", format!("unknown status '{s}'")).with_field("status"));
    }
    let page = Page { limit: q.limit, cursor: q.cursor.clone() };
    let filter = tasks::TaskFilter {
        directive_id: Some(path.into_inner()),
        city_id: q.city_id.clone(),
        status: q.status.clone(),
        cursor: q.cursor.clone(),
        limit: page.limit()?,
    };
    let (items, next) = tasks::list(pool.get_ref(), &p.scope(), &filter).await?;
    Ok(list_response(items, next))
}

#[utoipa::path(post, path = "/api/v1/directives/{id}/cancel", tag = "directives",
    responses((status = 200, body = directives::DirectiveOut), (status = 404), (status = 409)))]
pub async fn cancel(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&WRITERS)?;
    let id = path.into_inner();
    let mut tx = pool.begin().await?;
    // waits for a dispatcher writing a chunk of this directive (it holds the row lock); the
    // dispatcher stops at its next chunk once it sees the directive cancelled
    let status: Option<String> =
        sqlx::query_scalar("select status from directive where id = $1 for no key update").bind(&id).fetch_optional(&mut *tx).await?;
    match status.as_deref() {
        None => return Err(ApiError::not_found("directive")),
        Some("cancelled") => {
            tx.rollback().await?;
            let d = directives::get(&pool, &id).await?.ok_or_else(|| ApiError::not_found("directive"))?;
            return Ok(HttpResponse::Ok().json(d));
        }
        Some("failed") => return Err(ApiError::conflict("invalid_transition", "a failed directive cannot be cancelled")),
        _ => {}
    }
    sqlx::query("update directive set status = 'cancelled', cancelled_at = now() where id = $1").bind(&id).execute(&mut *tx).await?;
    let cancelled: Vec<(String, String, String)> = sqlx::query_as(
        "with old as (select id, city_id, status from task where directive_id = $1 and status = any($2) for update)
         update task t set status = 'cancelled', cancelled_at = now(), updated_at = now() from old where t.id = old.id
         returning old.id, old.city_id, old.status",
    )
    .bind(&id)
    .bind(&TaskStatus::OPEN[..])
    .fetch_all(&mut *tx)
    .await?;
    let transitions = queue::aggregate(cancelled.iter().map(|(_, c, s)| (id.as_str(), c.as_str(), Some(s.as_str()), "cancelled")));
    outbox::transitions(&mut tx, transitions).await?;
    let mut by_city: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (task, city, _) in &cancelled {
        by_city.entry(city.as_str()).or_default().push(task.clone());
    }
    let mut messages = Vec::new();
    for (city, ids) in by_city {
        for chunk in ids.chunks(500) {
            messages.push((
                queue::city_stream(city),
                Message::TasksCancelled { directive_id: id.clone(), city_id: city.to_string(), task_ids: chunk.to_vec() },
            ));
        }
    }
    outbox::enqueue_many(&mut tx, &messages).await?;
    audit::record(&mut tx, Some(&p.user_id), "directive.cancel", "directive", &id, None, json!({"tasks_cancelled": cancelled.len()}))
        .await?;
    tx.commit().await?;
    let d = directives::get(&pool, &id).await?.ok_or_else(|| ApiError::not_found("directive"))?;
    Ok(HttpResponse::Ok().json(d))
}
