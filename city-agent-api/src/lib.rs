//! city-agent-api: the city side of fieldops. Agents and city managers work their tasks here;
//! delivery workers take tasks off each city's Redis Stream and push them to live feeds (SSE).

pub mod delivery;
pub mod feed;
pub mod openapi;
pub mod routes;

use actix_web::{App, HttpServer, web};
use fieldops_core::Settings;
use fieldops_core::auth::TokenKeys;
use fieldops_core::platform::app::{Running, Shared};
use tracing_actix_web::TracingLogger;

/// Which background loops run (all by default; tests start delivery on its own).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub delivery: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { delivery: true }
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    build_with(settings, Options::default()).await
}

pub async fn build_with(settings: Settings, options: Options) -> anyhow::Result<Running> {
    let shared = Shared::connect(settings).await?;
    let tokens = web::Data::new(TokenKeys::new(&shared.settings.auth)?);
    let hub = feed::Hub::new();
    let mut tasks = vec![tokio::spawn(feed::subscribe(shared.clone(), hub.clone()))];
    if options.delivery {
        tasks.push(tokio::spawn(delivery::run(shared.clone())));
    }
    let listener = std::net::TcpListener::bind(shared.bind_addr())?;
    let port = listener.local_addr()?.port();
    let grace = std::time::Duration::from_secs(shared.settings.http.shutdown_timeout_secs);
    let app_shared = shared.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(web::Data::new(app_shared.clone()))
            .app_data(web::Data::new(hub.clone()))
            .configure(|cfg| app_shared.configure(cfg, &tokens))
            .configure(|cfg| routes::configure(cfg, &app_shared.settings))
            .configure(openapi::configure)
            .default_service(web::to(fieldops_core::platform::http::not_found))
    })
    .disable_signals()
    .shutdown_timeout(grace.as_secs())
    .listen(listener)?
    .run();
    tracing::info!(http.port = port, "city-agent-api listening");
    Ok(Running::new(port, server, shared.shutdown.clone(), tasks, grace))
}
