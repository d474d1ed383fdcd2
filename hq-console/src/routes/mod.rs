//! HTTP routes of the HQ API (`/api/v1`).

pub mod accounts;
pub mod directives;
pub mod geography;
pub mod people;
pub mod reports;
pub mod rules;

use actix_web::web;
use fieldops_core::platform::http::BodyLimit;

pub fn configure(cfg: &mut web::ServiceConfig, settings: &fieldops_core::Settings) {
    cfg.service(
        web::scope("/api/v1")
            .route("/auth/login", web::post().to(fieldops_core::auth::login))
            .route("/users", web::post().to(people::create_user))
            .route("/users", web::get().to(people::list_users))
            .route("/teams", web::post().to(people::create_team))
            .route("/teams", web::get().to(people::list_teams))
            .route("/cities", web::get().to(geography::list_cities))
            .route("/cities/{city_id}", web::put().to(geography::put_city))
            .route("/cities/{city_id}/territories", web::get().to(geography::get_territories))
            .service(
                web::resource("/cities/{city_id}/territories")
                    .app_data(BodyLimit(32 << 20))
                    .route(web::put().to(geography::put_territories)),
            )
            .service(
                web::resource("/accounts/import")
                    .app_data(BodyLimit(settings.http.import_max_body_bytes))
                    .route(web::post().to(accounts::import)),
            )
            .route("/accounts/{id}", web::get().to(accounts::get))
            .route("/directives", web::post().to(directives::create))
            .route("/directives", web::get().to(directives::list))
            .route("/directives/{id}", web::get().to(directives::get))
            .route("/directives/{id}/tasks", web::get().to(directives::tasks))
            .route("/directives/{id}/cancel", web::post().to(directives::cancel))
            .route("/rules", web::post().to(rules::create))
            .route("/rules", web::get().to(rules::list))
            .route("/rules/{id}", web::get().to(rules::get))
            .route("/rules/{id}", web::put().to(rules::update))
            .route("/rules/{id}", web::delete().to(rules::delete))
            .route("/rules/{id}/preview", web::post().to(rules::preview))
            .route("/rules/{id}/fire", web::post().to(rules::fire))
            .route("/reports", web::get().to(reports::list))
            .route("/reports.csv", web::get().to(reports::csv))
            .route("/reports/{id}", web::get().to(reports::get))
            .route("/escalations", web::get().to(reports::escalations))
            .route("/escalations/{id}/answer", web::post().to(reports::answer)),
    );
}
