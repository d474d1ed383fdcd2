//! PostgreSQL pool and migrations. `MIGRATOR` embeds `migrations/`; sqlx takes an advisory lock
//! while applying, so several services starting at once apply each migration exactly once.

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::config::DatabaseSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(settings.url.expose_secret())
        .await
        .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL (database.url): {e}"))?;
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
