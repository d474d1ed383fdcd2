//! city-agent-api: the city side of fieldops. Agents and city managers work their tasks here;
//! delivery workers take tasks off each city's Redis Stream and push them to live feeds (SSE).

pub mod delivery;
pub mod feed;
pub mod openapi;
pub mod routes;

use actix_web::web;
use fieldops_core::Settings;
use fieldops_core::platform::app::{Running, Shared};

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
    let hub = feed::Hub::new();
    let mut tasks = vec![tokio::spawn(feed::subscribe(shared.clone(), hub.clone()))];
    if options.delivery {
        tasks.push(tokio::spawn(delivery::run(shared.clone())));
    }
    let settings = shared.settings.clone();
    shared.serve(
        "city-agent-api",
        move |cfg| {
            cfg.app_data(web::Data::new(hub.clone()));
            routes::configure(cfg, &settings);
            openapi::configure(cfg);
        },
        tasks,
    )
}
