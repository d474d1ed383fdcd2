//! Structured tracing: JSON lines when `FIELDOPS_LOG_FORMAT=json`, human text otherwise;
//! level from `RUST_LOG` (default info). Spans use dotted fields (`city.id`, `task.id`).

use tracing_subscriber::EnvFilter;

pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let json = std::env::var("FIELDOPS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    if result.is_ok() {
        tracing::info!(service, "telemetry initialised");
    }
}
