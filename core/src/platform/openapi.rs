//! OpenAPI pieces every service documents: login, health, metrics, the error body, bearer auth.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// `{"code": "<stable_snake_case>", "message": "...", "field": "<json.path>" | null}`
    #[schema(value_type = Object)]
    error: serde_json::Value,
}

pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = crate::auth::LoginRequest,
    responses((status = 200, description = "{token, expires_at, user}; also sets the HttpOnly cookie fieldops_token"), (status = 401, body = ErrorBody)))]
#[allow(dead_code)]
pub fn login() {}

#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, description = "the process runs")))]
#[allow(dead_code)]
pub fn health_live() {}

#[utoipa::path(get, path = "/health/ready", tag = "operations", responses((status = 200, description = "PostgreSQL and Redis answer"), (status = 503)))]
#[allow(dead_code)]
pub fn health_ready() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", description = "Prometheus text")))]
#[allow(dead_code)]
pub fn metrics() {}
