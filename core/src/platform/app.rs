//! What every service process shares: connections, migrations at start, the bootstrap admin,
//! the common actix app data, and a runner that stops everything on one shutdown signal.

use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::Settings;
use super::http::{BodyLimit, Readiness};
use crate::auth::TokenKeys;
use crate::queue::Keys;

/// Connections and settings of one process.
#[derive(Clone)]
pub struct Shared {
    pub settings: Settings,
    pub db: PgPool,
    pub redis_client: redis::Client,
    pub redis: redis::aio::ConnectionManager,
    pub keys: Keys,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// Connects, applies pending migrations, creates the bootstrap admin if the user table is empty.
    pub async fn connect(settings: Settings) -> anyhow::Result<Shared> {
        let db = super::db::connect(&settings.database).await?;
        super::db::migrate(&db).await?;
        crate::auth::bootstrap_admin(&db, &settings.auth).await?;
        let redis_client = super::redis_conn::client(&settings.redis)?;
        let redis = super::redis_conn::manager(&redis_client, settings.delivery.block_ms).await?;
        let keys = Keys::new(settings.redis.prefix.clone());
        Ok(Shared { settings, db, redis_client, redis, keys, shutdown: CancellationToken::new() })
    }

    /// App data every HTTP service registers.
    pub fn configure(&self, cfg: &mut web::ServiceConfig, tokens: &web::Data<TokenKeys>) {
        cfg.app_data(web::Data::new(self.db.clone()))
            .app_data(tokens.clone())
            .app_data(web::Data::new(self.settings.auth.clone()))
            .app_data(web::Data::new(Readiness { db: self.db.clone(), redis: self.redis.clone() }))
            .app_data(BodyLimit(self.settings.http.max_body_bytes))
            .configure(super::http::extractor_config)
            .configure(super::http::ops_routes);
    }

    pub fn bind_addr(&self) -> (String, u16) {
        (self.settings.http.host.clone(), self.settings.http.port)
    }

    /// Binds the HTTP port (0 picks one) and builds the server every service runs: request
    /// tracing, the shared app data and ops routes, the service's own routes from `routes`, a
    /// JSON 404 for anything else. `tasks` are the background loops to await on shutdown.
    pub fn serve<F>(&self, service: &'static str, routes: F, tasks: Vec<JoinHandle<()>>) -> anyhow::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let tokens = web::Data::new(TokenKeys::new(&self.settings.auth)?);
        let listener = std::net::TcpListener::bind(self.bind_addr())?;
        let port = listener.local_addr()?.port();
        let grace = Duration::from_secs(self.settings.http.shutdown_timeout_secs);
        let shared = self.clone();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(web::Data::new(shared.clone()))
                .configure(|cfg| shared.configure(cfg, &tokens))
                .configure(routes.clone())
                .default_service(web::to(super::http::not_found))
        })
        .disable_signals()
        .shutdown_timeout(grace.as_secs())
        .listen(listener)?
        .run();
        tracing::info!(service, http.port = port, "listening");
        Ok(Running::new(port, server, self.shutdown.clone(), tasks, grace))
    }
}

/// A started service: its HTTP server and background tasks.
pub struct Running {
    pub port: u16,
    pub shutdown: CancellationToken,
    server: Server,
    handle: ServerHandle,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Running {
    pub fn new(port: u16, server: Server, shutdown: CancellationToken, tasks: Vec<JoinHandle<()>>, grace: Duration) -> Running {
        let handle = server.handle();
        Running { port, shutdown, server, handle, tasks, grace }
    }

    /// Serves until SIGTERM / Ctrl-C or until `shutdown` is cancelled; then stops taking work,
    /// lets in-flight requests and worker batches finish, and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Running { server, handle, tasks, shutdown, grace, .. } = self;
        let server_task = tokio::spawn(server);
        let token = shutdown.clone();
        tokio::select! {
            _ = super::shutdown_signal() => {}
            _ = token.cancelled() => {}
        }
        shutdown.cancel();
        handle.stop(true).await;
        let _ = server_task.await;
        for t in tasks {
            if tokio::time::timeout(grace, t).await.is_err() {
                tracing::warn!("a background task did not finish within the grace period");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }

    /// For tests: run in the background; cancel `shutdown` to stop.
    pub fn spawn(self) -> (u16, CancellationToken, JoinHandle<anyhow::Result<()>>) {
        let port = self.port;
        let token = self.shutdown.clone();
        (port, token, tokio::spawn(self.run_until_stopped()))
    }
}
