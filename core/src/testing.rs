//! Test support: a fresh PostgreSQL database per test, copied from a migrated template, and a
//! Redis key prefix per test. Talks to the real servers named by `FIELDOPS__DATABASE__URL` and
//! `FIELDOPS__REDIS__URL` (defaults: the local ones).

use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::Settings;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

fn base_url() -> String {
    std::env::var("FIELDOPS__DATABASE__URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/fieldops".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (head, _) = url.rsplit_once('/').expect("database url has a path");
    let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{head}/{db}{query}")
}

/// Creates (once per process) a migrated template database and returns its name.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let url = base_url();
            let mut admin = PgConnection::connect(&with_db(&url, "postgres")).await.expect("connect to PostgreSQL (postgres db)");
            // one process builds the template at a time; the migrations' checksum names it
            let digest = crate::platform::db::MIGRATOR.iter().map(|m| hex::encode(&m.checksum[..4])).collect::<String>();
            let name = format!("fieldops_tpl_{}", &sha(&digest)[..12]);
            sqlx::query("select pg_advisory_lock(4242)").execute(&mut admin).await.unwrap();
            let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)").bind(&name).fetch_one(&mut admin).await.unwrap();
            if !exists {
                let tmp = format!("{name}_build");
                sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists {tmp}"))).execute(&mut admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("create database {tmp}"))).execute(&mut admin).await.unwrap();
                let pool = sqlx::PgPool::connect(&with_db(&url, &tmp)).await.unwrap();
                crate::platform::db::migrate(&pool).await.expect("migrations apply");
                pool.close().await;
                sqlx::query(sqlx::AssertSqlSafe(format!("alter database {tmp} rename to {name}"))).execute(&mut admin).await.unwrap();
            }
            sqlx::query("select pg_advisory_unlock(4242)").execute(&mut admin).await.unwrap();
            name
        })
        .await
}

fn sha(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Settings for one test: its own database (migrated) and its own Redis prefix.
pub async fn settings() -> Settings {
    let tpl = template().await;
    let url = base_url();
    let db = format!("fieldops_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&with_db(&url, "postgres")).await.expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db} template {tpl}"))).execute(&mut admin).await.expect("create test database");
    let mut s = Settings::defaults();
    s.database.url = SecretString::from(with_db(&url, &db));
    s.database.max_connections = 8;
    if let Ok(r) = std::env::var("FIELDOPS__REDIS__URL") {
        s.redis.url = SecretString::from(r);
    }
    s.redis.prefix = format!("fieldops-test:{}:", &db[14..26]);
    s.http.port = 0;
    s.auth.token_secret = SecretString::from("test-secret-test-secret-test-secret-0123456789");
    s.auth.cookie_secure = false;
    s.dispatch.poll_interval_ms = 100;
    s.delivery.block_ms = 200;
    s.delivery.reclaim_idle_ms = 500;
    s
}
