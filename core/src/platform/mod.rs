//! Process plumbing shared by the services: configuration, errors, HTTP helpers, telemetry,
//! database and Redis connections, health and shutdown.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod openapi;
pub mod redis_conn;
pub mod telemetry;

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown signal received");
}
