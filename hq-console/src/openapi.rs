//! The served OpenAPI document (`/api-docs/openapi.json`) and a vendored Swagger UI (`/swagger-ui/`).

use actix_web::web;
use fieldops_core::platform::openapi::BearerAuth;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{accounts, directives, geography, people, reports, rules};

#[derive(OpenApi)]
#[openapi(
    info(title = "fieldops hq-console", version = "1", description = "HQ API: people, geography, accounts, directives, feedback. Errors: {\"error\": {\"code\", \"message\", \"field\"}}."),
    paths(
        people::create_user, people::list_users, people::create_team, people::list_teams,
        geography::put_city, geography::list_cities, geography::get_territories, geography::put_territories,
        accounts::import, accounts::get,
        directives::create, directives::list, directives::get, directives::tasks, directives::cancel,
        rules::create, rules::list, rules::get, rules::update, rules::delete, rules::preview, rules::fire,
        reports::list, reports::get, reports::csv, reports::escalations, reports::answer,
        fieldops_core::platform::openapi::login, fieldops_core::platform::openapi::health_live,
        fieldops_core::platform::openapi::health_ready, fieldops_core::platform::openapi::metrics,
    ),
    components(schemas(fieldops_core::store::tasks::TaskOut, fieldops_core::platform::openapi::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()));
}
