//! The dispatcher: turns pending directives into tasks (one per target, exactly once, with their
//! outbox rows in the same transaction), relays the outbox to Redis Streams, and consumes the
//! feedback stream into per-directive, per-city counts. Serves health and metrics only.

pub mod feedback;
pub mod janitor;
pub mod materialise;
pub mod relay;
pub mod scheduler;
pub mod triggers;
mod wake;

use fieldops_core::Settings;
use fieldops_core::platform::app::{Running, Shared};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldops dispatcher",
        version = "1",
        description = "Health and metrics only; the dispatcher's work is driven by PostgreSQL and Redis."
    ),
    paths(
        fieldops_core::platform::openapi::health_live,
        fieldops_core::platform::openapi::health_ready,
        fieldops_core::platform::openapi::metrics
    )
)]
struct ApiDoc;

/// Which loops this process runs (all by default; tests turn some off).
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub materialise: bool,
    pub relay: bool,
    pub feedback: bool,
    pub scheduler: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles { materialise: true, relay: true, feedback: true, scheduler: true }
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    build_with(settings, Roles::default()).await
}

pub async fn build_with(settings: Settings, roles: Roles) -> anyhow::Result<Running> {
    let shared = Shared::connect(settings).await?;
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
    if roles.scheduler {
        tasks.push(tokio::spawn(scheduler::run(shared.clone())));
        tasks.push(tokio::spawn(janitor::run(shared.clone())));
    }
    shared.serve(
        "dispatcher",
        |cfg| {
            cfg.service(utoipa_swagger_ui::SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", ApiDoc::openapi()));
        },
        tasks,
    )
}
