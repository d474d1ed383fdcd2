//! The dispatcher: turns pending directives into tasks (one per target, exactly once, with their
//! outbox rows in the same transaction), relays the outbox to Redis Streams, and consumes the
//! feedback stream into per-directive, per-city counts. Serves health and metrics only.

pub mod feedback;
pub mod materialise;
pub mod relay;
mod wake;

use actix_web::{App, HttpServer, web};
use fieldops_core::Settings;
use fieldops_core::auth::TokenKeys;
use fieldops_core::platform::app::{Running, Shared};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "fieldops dispatcher", version = "1", description = "Health and metrics only; the dispatcher's work is driven by PostgreSQL and Redis."),
    paths(fieldops_core::platform::openapi::health_live, fieldops_core::platform::openapi::health_ready, fieldops_core::platform::openapi::metrics)
)]
struct ApiDoc;

/// Which loops this process runs (all by default; tests turn some off).
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub materialise: bool,
    pub relay: bool,
    pub feedback: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles { materialise: true, relay: true, feedback: true }
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    build_with(settings, Roles::default()).await
}

pub async fn build_with(settings: Settings, roles: Roles) -> anyhow::Result<Running> {
    let shared = Shared::connect(settings).await?;
    let tokens = web::Data::new(TokenKeys::new(&shared.settings.auth)?);
    let listener = std::net::TcpListener::bind(shared.bind_addr())?;
    let port = listener.local_addr()?.port();
    let grace = std::time::Duration::from_secs(shared.settings.http.shutdown_timeout_secs);
    let app_shared = shared.clone();
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| app_shared.configure(cfg, &tokens))
            .service(utoipa_swagger_ui::SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()))
            .default_service(web::to(fieldops_core::platform::http::not_found))
    })
    .disable_signals()
    .workers(1)
    .listen(listener)?
    .run();
    let mut tasks = Vec::new();
    if roles.materialise {
        tasks.push(tokio::spawn(materialise::run(shared.clone())));
    }
    if roles.relay {
        tasks.push(tokio::spawn(relay::run(shared.clone())));
    }
    if roles.feedback {
        tasks.push(tokio::spawn(feedback::run(shared.clone())));
    }
    tracing::info!(http.port = port, "dispatcher listening");
    Ok(Running::new(port, server, shared.shutdown.clone(), tasks, grace))
}
