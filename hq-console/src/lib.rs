//! hq-console: the HQ side of fieldops. People and teams, cities, territories and accounts,
//! directives and their live counts, field reports and escalations, and the OpenAPI document.

pub mod openapi;
pub mod routes;

use fieldops_core::Settings;
use fieldops_core::platform::app::{Running, Shared};

/// Connects, migrates, binds (port 0 in tests) and returns the service ready to run.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let shared = Shared::connect(settings).await?;
    let settings = shared.settings.clone();
    shared.serve(
        "hq-console",
        move |cfg| {
            routes::configure(cfg, &settings);
            openapi::configure(cfg);
        },
        Vec::new(),
    )
}
