//! HTTP plumbing shared by the services: a JSON body extractor whose errors name the field,
//! structured errors for query / path extraction and unknown routes, health and metrics routes.

use std::sync::OnceLock;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::de::DeserializeOwned;
use sqlx::PgPool;

use super::error::ApiError;

/// Largest body a route accepts; put in app data (or a scope's) to override the default.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The raw body bytes, read up to [`BodyLimit`], answered 413 `payload_too_large` beyond it.
pub struct LimitedBody(pub web::Bytes);

impl FromRequest for LimitedBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map(|l| l.0).unwrap_or(1 << 20);
        let declared =
            req.headers().get(actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("body exceeds {limit} bytes"));
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let mut buf = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", format!("could not read body: {e}")))?;
                if buf.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(LimitedBody(buf.freeze()))
        })
    }
}

/// A JSON body parsed into `T`: syntax errors answer 400 `malformed_json`, type errors,
/// missing and unknown fields answer 422 `invalid_field` naming the JSON path.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = LimitedBody::from_request(req, payload);
        Box::pin(async move {
            let LimitedBody(bytes) = body.await?;
            parse_json(&bytes).map(JsonBody)
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let field = if path == "." || path.is_empty() { None } else { Some(path) };
            let e = match inner.classify() {
                serde_json::error::Category::Data => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", inner.to_string()),
                _ => ApiError::bad_request("malformed_json", format!("body is not valid JSON: {inner}")),
            };
            Err(match field {
                Some(f) => e.with_field(f),
                None => e,
            })
        }
    }
}

/// Registers the structured error handlers for query and path extraction.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _| ApiError::bad_request("invalid_query", err.to_string()).into()))
        .app_data(
            web::PathConfig::default().error_handler(|err, _| ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()).into()),
        )
        .app_data(web::JsonConfig::default().error_handler(|err, _| ApiError::bad_request("malformed_json", err.to_string()).into()));
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route"))
}

/// What `/health/ready` checks.
#[derive(Clone)]
pub struct Readiness {
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
}

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

pub async fn ready(r: web::Data<Readiness>) -> HttpResponse {
    let db = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&r.db).await.is_ok();
    let mut conn = r.redis.clone();
    let redis_ok = tokio::time::timeout(std::time::Duration::from_secs(2), redis::cmd("PING").query_async::<String>(&mut conn))
        .await
        .is_ok_and(|r| r.is_ok());
    let body = serde_json::json!({"postgres": db, "redis": redis_ok});
    if db && redis_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub async fn metrics_route() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(prometheus().render())
}

/// `/health/live`, `/health/ready`, `/metrics`.
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics_route));
}

/// Limit and cursor of a list request.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl Page {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 500").with_field("limit")),
        }
    }
}

/// `{"items": [...], "next_cursor": ...}`
pub fn list_response<T: serde::Serialize>(items: Vec<T>, next_cursor: Option<String>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next_cursor}))
}

/// Like [`parse_json`] for an already-parsed value: errors name the JSON path.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", err.into_inner().to_string());
        if path == "." || path.is_empty() { e } else { e.with_field(path) }
    })
}
