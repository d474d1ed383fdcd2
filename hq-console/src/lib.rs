//! hq-console: the HQ side of fieldops. People and teams, cities, territories and accounts,
//! directives and their live counts, field reports and escalations, and the OpenAPI document.

pub mod openapi;
pub mod routes;

use actix_web::{App, HttpServer, web};
use fieldops_core::auth::TokenKeys;
use fieldops_core::platform::app::{Running, Shared};
use fieldops_core::Settings;
use tracing_actix_web::TracingLogger;

/// Connects, migrates, binds (port 0 in tests) and returns the service ready to run.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let shared = Shared::connect(settings).await?;
    let tokens = web::Data::new(TokenKeys::new(&shared.settings.auth)?);
    let listener = std::net::TcpListener::bind(shared.bind_addr())?;
    let port = listener.local_addr()?.port();
    let grace = std::time::Duration::from_secs(shared.settings.http.shutdown_timeout_secs);
    let app_shared = shared.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(web::Data::new(app_shared.clone()))
            .configure(|cfg| app_shared.configure(cfg, &tokens))
            .configure(|cfg| routes::configure(cfg, &app_shared.settings))
            .configure(|cfg| openapi::configure(cfg))
            .default_service(web::to(fieldops_core::platform::http::not_found))
    })
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(listener)?
    .run();
    tracing::info!(http.port = port, "hq-console listening");
    Ok(Running::new(port, server, shared.shutdown.clone(), Vec::new(), grace))
}
