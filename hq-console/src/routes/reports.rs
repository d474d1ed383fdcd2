//! Field feedback for HQ: reports (JSON and CSV) and escalations.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{JsonBody, Page, list_response};
use fieldops_core::store::{audit, reports};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    pub directive_id: Option<String>,
    pub rule_id: Option<String>,
    pub city_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl ReportQuery {
    fn filter(&self, max: i64) -> Result<reports::ReportFilter, ApiError> {
        let since = match &self.since {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|_| ApiError::bad_request("invalid_query", "since must be RFC 3339 with offset").with_field("since"))?
                    .with_timezone(&Utc),
            ),
        };
        if let Some(k) = &self.kind
            && !matches!(k.as_str(), "completion" | "intel" | "issue")
        {
            return Err(ApiError::bad_request("invalid_query", "kind is completion, intel or issue").with_field("kind"));
        }
        let limit = match self.limit {
            None if max > 500 => max,
            _ => Page { limit: self.limit, cursor: None }.limit()?,
        };
        Ok(reports::ReportFilter {
            directive_id: self.directive_id.clone(),
            rule_id: self.rule_id.clone(),
            city_id: self.city_id.clone(),
            kind: self.kind.clone(),
            since,
            cursor: self.cursor.clone(),
            limit,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/reports", tag = "feedback",
    params(("directive_id" = Option<String>, Query), ("rule_id" = Option<String>, Query), ("city_id" = Option<String>, Query),
           ("kind" = Option<String>, Query), ("since" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [report], next_cursor}, newest first")))]
pub async fn list(p: Principal, pool: web::Data<PgPool>, q: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let (items, next) = reports::list(pool.get_ref(), &p.scope(), &q.filter(50)?).await?;
    Ok(list_response(items, next))
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "feedback", responses((status = 200, body = reports::ReportOut), (status = 404)))]
pub async fn get(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let r = reports::get(pool.get_ref(), &p.scope(), &path).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(HttpResponse::Ok().json(r))
}

#[utoipa::path(get, path = "/api/v1/reports.csv", tag = "feedback",
    params(("directive_id" = Option<String>, Query), ("rule_id" = Option<String>, Query), ("city_id" = Option<String>, Query), ("kind" = Option<String>, Query), ("since" = Option<String>, Query)),
    responses((status = 200, content_type = "text/csv", description = "the same reports as CSV (up to 100000 rows)")))]
pub async fn csv(p: Principal, pool: web::Data<PgPool>, q: web::Query<ReportQuery>) -> Result<HttpResponse, ApiError> {
    let (items, _) = reports::list(pool.get_ref(), &p.scope(), &q.filter(100_000)?).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "kind",
        "created_at",
        "city_id",
        "territory_id",
        "directive_id",
        "rule_id",
        "task_id",
        "author_id",
        "text",
        "tags",
        "lat",
        "lon",
        "answers",
        "photo_ids",
    ];
    w.write_record(header).map_err(ApiError::internal)?;
    for r in items {
        let (lat, lon) = r.location.map(|l| (l.lat.to_string(), l.lon.to_string())).unwrap_or_default();
        w.write_record([
            r.id,
            r.kind,
            r.created_at.to_rfc3339(),
            r.city_id,
            r.territory_id.unwrap_or_default(),
            r.directive_id.unwrap_or_default(),
            r.rule_id.unwrap_or_default(),
            r.task_id.unwrap_or_default(),
            r.author_id,
            r.text.unwrap_or_default(),
            r.tags.join(";"),
            lat,
            lon,
            r.answers.map(|a| a.to_string()).unwrap_or_default(),
            r.photo_ids.join(";"),
        ])
        .map_err(ApiError::internal)?;
    }
    let bytes = w.into_inner().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"reports.csv\""))
        .body(bytes))
}

#[utoipa::path(get, path = "/api/v1/escalations", tag = "feedback", responses((status = 200, description = "{items: [escalation]}")))]
pub async fn escalations(p: Principal, pool: web::Data<PgPool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin, Role::HqStrategist, Role::Coo, Role::CityManager])?;
    let scope = p.scope();
    let limit = page.limit()?;
    let rows: Vec<(String, String, String, String, Option<String>, DateTime<Utc>, Option<String>, Vec<String>, String)> = sqlx::query_as(
        "select e.id, e.report_id, e.city_id, e.status, e.answer, e.created_at, r.text, r.tags, r.author_id
         from escalation e join report r on r.id = e.report_id
         where ($1::text is null or e.city_id = $1) and ($2::text is null or e.id < $2)
         order by (e.status = 'open') desc, e.id desc limit $3",
    )
    .bind(&scope.city_id)
    .bind(&page.cursor)
    .bind(limit + 1)
    .fetch_all(pool.get_ref())
    .await?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|(id, report_id, city_id, status, answer, created_at, text, tags, author_id)| {
            json!({"id": id, "report_id": report_id, "city_id": city_id, "status": status, "answer": answer,
                   "created_at": created_at, "text": text, "tags": tags, "author_id": author_id})
        })
        .collect();
    let (items, next) = fieldops_core::store::tasks::page(items, limit, |v| v["id"].as_str().unwrap_or_default().to_string());
    Ok(list_response(items, next))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    pub answer: String,
}

#[utoipa::path(post, path = "/api/v1/escalations/{id}/answer", tag = "feedback", request_body = AnswerIn,
    responses((status = 200, description = "escalation"), (status = 404), (status = 409)))]
pub async fn answer(
    p: Principal,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<AnswerIn>,
) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin, Role::HqStrategist, Role::CityManager])?;
    if body.answer.trim().is_empty() || body.answer.len() > 10_000 {
        return Err(ApiError::invalid("answer", "answer must be 1-10000 bytes"));
    }
    let scope = p.scope();
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> =
        sqlx::query_as("select status, city_id from escalation where id = $1 and ($2::text is null or city_id = $2) for update")
            .bind(path.as_str())
            .bind(&scope.city_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (status, city) = row.ok_or_else(|| ApiError::not_found("escalation"))?;
    if status != "open" {
        return Err(ApiError::conflict("invalid_transition", "this escalation is already answered"));
    }
    sqlx::query("update escalation set status = 'answered', answer = $2, answered_by = $3, answered_at = now() where id = $1")
        .bind(path.as_str())
        .bind(&body.answer)
        .bind(&p.user_id)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, Some(&p.user_id), "escalation.answer", "escalation", &path, Some(&city), json!({})).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"id": path.into_inner(), "status": "answered", "answer": body.answer, "city_id": city})))
}
