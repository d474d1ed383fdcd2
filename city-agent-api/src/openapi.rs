//! The served OpenAPI document (`/api-docs/openapi.json`) and a vendored Swagger UI (`/swagger-ui/`).

use actix_web::web;
use fieldops_core::platform::openapi::BearerAuth;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{reports, tasks};

#[derive(OpenApi)]
#[openapi(
    info(title = "fieldops city-agent-api", version = "1", description = "Field API for agents and city managers. Errors: {\"error\": {\"code\", \"message\", \"field\"}}."),
    paths(
        tasks::list, tasks::get, tasks::claim, tasks::accept, tasks::checkin, tasks::complete, tasks::reject, tasks::assign,
        reports::create, reports::get, reports::upload_photo, reports::get_photo, crate::feed::stream,
        fieldops_core::platform::openapi::login, fieldops_core::platform::openapi::health_live,
        fieldops_core::platform::openapi::health_ready, fieldops_core::platform::openapi::metrics,
    ),
    components(schemas(fieldops_core::platform::openapi::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()));
}
