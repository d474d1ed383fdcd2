//! `Idempotency-Key` for creating POSTs. Inside the handler's transaction, `begin` takes a
//! transaction-scoped advisory lock on (user, key): a concurrent duplicate waits, then finds the
//! stored answer. The answer is stored by `finish` in the same transaction as the work, so a crash
//! leaves neither. Same key + same body -> the first answer again; another body -> 409.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::error::ApiError;

pub struct IdempotencyKey {
    pub user_id: String,
    pub key: String,
    pub request_hash: String,
}

/// The request's key, if any; `body` is hashed with the method and path.
pub fn key_of(req: &HttpRequest, user_id: &str, body: &[u8]) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255).ok_or_else(|| {
        ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters")
            .with_field("Idempotency-Key")
    })?;
    let mut h = Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b" ");
    h.update(req.path().as_bytes());
    h.update(b"\n");
    h.update(body);
    Ok(Some(IdempotencyKey { user_id: user_id.to_string(), key: key.to_string(), request_hash: hex::encode(h.finalize()) }))
}

/// A stored answer to replay.
pub struct Saved {
    pub status: StatusCode,
    pub body: Value,
}

pub async fn begin(conn: &mut PgConnection, key: &IdempotencyKey) -> Result<Option<Saved>, ApiError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 7))")
        .bind(&key.user_id)
        .bind(&key.key)
        .execute(&mut *conn)
        .await?;
    let row: Option<(String, i16, Value)> =
        sqlx::query_as("select request_hash, response_status, response_body from idempotency_key where user_id = $1 and key = $2")
            .bind(&key.user_id)
            .bind(&key.key)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        None => Ok(None),
        Some((hash, _, _)) if hash != key.request_hash => {
            Err(ApiError::conflict("idempotency_key_reused", "this Idempotency-Key was used with another request")
                .with_field("Idempotency-Key"))
        }
        Some((_, status, body)) => Ok(Some(Saved { status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK), body })),
    }
}

pub async fn finish(conn: &mut PgConnection, key: &IdempotencyKey, status: StatusCode, body: &Value) -> Result<(), ApiError> {
    sqlx::query("insert into idempotency_key (user_id, key, request_hash, response_status, response_body) values ($1, $2, $3, $4, $5)")
        .bind(&key.user_id)
        .bind(&key.key)
        .bind(&key.request_hash)
        .bind(status.as_u16() as i16)
        .bind(body)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Handler helper: the stored answer for a replayed key, if any.
pub async fn replay(conn: &mut PgConnection, key: Option<&IdempotencyKey>) -> Result<Option<actix_web::HttpResponse>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    Ok(begin(conn, key)
        .await?
        .map(|s| actix_web::HttpResponse::build(s.status).insert_header(("Idempotent-Replayed", "true")).json(s.body)))
}

/// Handler helper: stores the answer under the key (same transaction as the work) and builds it.
pub async fn respond(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    status: StatusCode,
    body: Value,
) -> Result<actix_web::HttpResponse, ApiError> {
    if let Some(key) = key {
        finish(conn, key, status, &body).await?;
    }
    Ok(actix_web::HttpResponse::build(status).json(body))
}
