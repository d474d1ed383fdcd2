use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::PgPool;

use super::{COOKIE_NAME, TokenKeys, hash_password, verify_password};
use crate::platform::config::AuthSettings;
use crate::platform::error::ApiError;
use crate::platform::http::JsonBody;
use crate::store::users::{self, UserRow};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/v1/auth/login` (both services).
pub async fn login(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    auth: web::Data<AuthSettings>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let user: Option<UserRow> = users::by_username(&pool, &body.username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = body.password.clone();
    // verify against a throwaway hash for unknown users so timing does not reveal who exists
    let ok = web::block(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = verify_password(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Err(ApiError::unauthorized("wrong username or password").with_field("password")),
    };
    let (token, expires_at) = keys.issue(&user.id, &user.role, user.city_id.clone(), user.team_id.clone())?;
    let cookie =
        Cookie::build(COOKIE_NAME, token.clone()).http_only(true).secure(auth.cookie_secure).same_site(SameSite::Strict).path("/").finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(serde_json::json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339(),
        "user": user.to_out(),
    })))
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password("not-a-real-password").expect("hashing works"));

/// Creates the bootstrap admin on an empty user table when both settings are set.
pub async fn bootstrap_admin(pool: &PgPool, auth: &AuthSettings) -> anyhow::Result<()> {
    let username = auth.bootstrap_admin_username.trim();
    let password = auth.bootstrap_admin_password.expose_secret().to_string();
    if username.is_empty() || password.is_empty() {
        return Ok(());
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let created = sqlx::query(
        "insert into app_user (id, username, password_hash, display_name, role)
         select $1, $2, $3, $2, 'admin' where not exists (select 1 from app_user)
         on conflict do nothing",
    )
    .bind(crate::domain::new_id("usr"))
    .bind(username)
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    if created > 0 {
        tracing::info!(user.name = username, "bootstrap admin created");
    }
    Ok(())
}
