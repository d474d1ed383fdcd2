//! HTTP routes of the field API (`/api/v1`).

pub mod reports;
pub mod tasks;

use actix_web::web;
use fieldops_core::Settings;
use fieldops_core::platform::http::BodyLimit;

pub fn configure(cfg: &mut web::ServiceConfig, settings: &Settings) {
    cfg.service(
        web::scope("/api/v1")
            .route("/auth/login", web::post().to(fieldops_core::auth::login))
            .route("/tasks", web::get().to(tasks::list))
            .route("/tasks/{id}", web::get().to(tasks::get))
            .route("/tasks/{id}/claim", web::post().to(tasks::claim))
            .route("/tasks/{id}/accept", web::post().to(tasks::accept))
            .route("/tasks/{id}/checkin", web::post().to(tasks::checkin))
            .route("/tasks/{id}/complete", web::post().to(tasks::complete))
            .route("/tasks/{id}/reject", web::post().to(tasks::reject))
            .route("/tasks/{id}/assign", web::post().to(tasks::assign))
            .route("/reports", web::post().to(reports::create))
            .route("/reports/{id}", web::get().to(reports::get))
            .service(
                web::resource("/photos").app_data(BodyLimit(settings.http.max_photo_bytes)).route(web::post().to(reports::upload_photo)),
            )
            .route("/photos/{id}", web::get().to(reports::get_photo))
            .route("/stream", web::get().to(crate::feed::stream)),
    );
}
