//! Field reports (intel, issues) and photos. A report goes to PostgreSQL first and to the
//! feedback stream through the outbox; an `issue` opens an escalation for HQ.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::domain::{LatLon, new_id};
use fieldops_core::geo::{TerritoryIndex, Zone, parse_stored};
use fieldops_core::platform::app::Shared;
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{LimitedBody, parse_json};
use fieldops_core::platform::idempotency;
use fieldops_core::queue::{FEEDBACK_STREAM, Message, outbox};
use fieldops_core::store::{audit, reports, tasks};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Intel,
    Issue,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    pub kind: ReportKind,
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub location: LatLon,
    #[serde(default)]
    pub photo_ids: Vec<String>,
    pub task_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/reports", tag = "field", request_body = ReportIn,
    responses((status = 201, body = reports::ReportOut), (status = 404), (status = 409), (status = 422)))]
pub async fn create(req: HttpRequest, p: Principal, shared: web::Data<Shared>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Agent, Role::CityManager])?;
    let input: ReportIn = parse_json(&body.0)?;
    if input.text.trim().is_empty() || input.text.len() > 10_000 {
        return Err(ApiError::invalid("text", "text must be 1-10000 bytes"));
    }
    if input.tags.len() > 20 {
        return Err(ApiError::invalid("tags", "at most 20 tags"));
    }
    for (i, t) in input.tags.iter().enumerate() {
        if t.is_empty() || t.len() > 64 {
            return Err(ApiError::invalid(format!("tags[{i}]"), "tags are 1-64 bytes"));
        }
    }
    input.location.check("location")?;
    let city = p.city_id.clone().ok_or_else(ApiError::forbidden)?;
    let key = idempotency::key_of(&req, &p.user_id, &body.0)?;
    let mut tx = shared.db.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let (task_id, directive_id, rule_id) = match &input.task_id {
        None => (None, None, None),
        Some(id) => {
            let t = tasks::get(&mut *tx, &p.scope(), id)
                .await?
                .ok_or_else(|| ApiError::unprocessable("unknown_task", "task_id", "no such task of yours"))?;
            (Some(t.id), Some(t.directive_id), t.rule_id)
        }
    };
    crate::routes::tasks::check_photos(&mut tx, &p.user_id, &input.photo_ids, 0).await?;
    let territory = locate(&mut tx, &city, input.location).await?;
    let kind = match input.kind {
        ReportKind::Intel => "intel",
        ReportKind::Issue => "issue",
    };
    let id = new_id("rep");
    sqlx::query(
        "insert into report (id, kind, task_id, directive_id, rule_id, city_id, territory_id, author_id, text, tags, lat, lon, photo_ids)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&id)
    .bind(kind)
    .bind(&task_id)
    .bind(&directive_id)
    .bind(&rule_id)
    .bind(&city)
    .bind(&territory)
    .bind(&p.user_id)
    .bind(&input.text)
    .bind(&input.tags)
    .bind(input.location.lat)
    .bind(input.location.lon)
    .bind(&input.photo_ids)
    .execute(&mut *tx)
    .await?;
    if kind == "issue" {
        sqlx::query("insert into escalation (id, report_id, city_id) values ($1, $2, $3)")
            .bind(new_id("esc"))
            .bind(&id)
            .bind(&city)
            .execute(&mut *tx)
            .await?;
    }
    outbox::enqueue(
        &mut tx,
        FEEDBACK_STREAM,
        &Message::ReportCreated {
            report_id: id.clone(),
            kind: kind.into(),
            city_id: city.clone(),
            territory_id: territory.clone(),
            directive_id,
        },
    )
    .await?;
    audit::record(&mut tx, Some(&p.user_id), "report.create", "report", &id, Some(&city), json!({"kind": kind})).await?;
    let out = reports::get(&mut *tx, &p.scope(), &id).await?.ok_or_else(|| ApiError::internal(anyhow::anyhow!("report vanished")))?;
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::CREATED, serde_json::to_value(out).expect("serialises")).await?;
    tx.commit().await?;
    Ok(resp)
}

/// The city's territory holding the point (territory sets are small: one query, one index).
async fn locate(conn: &mut sqlx::PgConnection, city: &str, at: LatLon) -> Result<Option<String>, ApiError> {
    let rows: Vec<(String, sqlx::types::Json<Value>)> =
        sqlx::query_as("select id, geometry from territory where city_id = $1").bind(city).fetch_all(&mut *conn).await?;
    let zones = rows
        .into_iter()
        .filter_map(|(id, g)| parse_stored(&g.0).map(|shape| Zone { id, city_id: city.to_string(), team_id: None, shape }))
        .collect();
    Ok(TerritoryIndex::new(zones).locate(at.lat, at.lon).map(|z| z.id.clone()))
}

#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "field", responses((status = 200, body = reports::ReportOut), (status = 404)))]
pub async fn get(p: Principal, shared: web::Data<Shared>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let r = reports::get(&shared.db, &p.scope(), &path).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(HttpResponse::Ok().json(r))
}

#[utoipa::path(post, path = "/api/v1/photos", tag = "field",
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "JPEG or PNG bytes, at most 10 MiB"),
    responses((status = 201, description = "{id}"), (status = 413), (status = 415)))]
pub async fn upload_photo(req: HttpRequest, p: Principal, shared: web::Data<Shared>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Agent, Role::CityManager])?;
    let declared = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = &body.0;
    let sniffed = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "the body is not a JPEG or PNG image")
            .with_field("body"));
    };
    if !declared.starts_with(sniffed) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {sniffed} for this body"),
        )
        .with_field("Content-Type"));
    }
    let key = idempotency::key_of(&req, &p.user_id, bytes)?;
    let mut tx = shared.db.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let id = new_id("pho");
    sqlx::query("insert into photo (id, city_id, uploader_id, content_type, bytes) values ($1, $2, $3, $4, $5)")
        .bind(&id)
        .bind(&p.city_id)
        .bind(&p.user_id)
        .bind(sniffed)
        .bind(bytes.as_ref())
        .execute(&mut *tx)
        .await?;
    let resp =
        idempotency::respond(&mut tx, key.as_ref(), StatusCode::CREATED, json!({"id": id, "content_type": sniffed, "bytes": bytes.len()}))
            .await?;
    tx.commit().await?;
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/photos/{id}", tag = "field", responses((status = 200, content_type = "image/jpeg"), (status = 404)))]
pub async fn get_photo(p: Principal, shared: web::Data<Shared>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let scope = p.scope();
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "select content_type, bytes from photo where id = $1 and ($2::text is null or city_id = $2) and ($3 <> 'agent' or uploader_id = $4)",
    )
    .bind(path.as_str())
    .bind(&scope.city_id)
    .bind(scope.role)
    .bind(&scope.user_id)
    .fetch_optional(&shared.db)
    .await?;
    let (ct, bytes) = row.ok_or_else(|| ApiError::not_found("photo"))?;
    Ok(HttpResponse::Ok().content_type(ct).insert_header(("Cache-Control", "private, max-age=86400")).body(bytes))
}
