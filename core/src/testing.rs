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
            let exists: bool = sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
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
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db} template {tpl}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
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

/// A service binary configured the way an operator does it: no arguments, `FIELDOPS__`
/// variables naming `settings`' database, Redis prefix and secret, and `port`.
pub fn service_command(bin: &str, settings: &Settings, port: u16) -> tokio::process::Command {
    use secrecy::ExposeSecret;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env("FIELDOPS__DATABASE__URL", settings.database.url.expose_secret())
        .env("FIELDOPS__REDIS__URL", settings.redis.url.expose_secret())
        .env("FIELDOPS__REDIS__PREFIX", &settings.redis.prefix)
        .env("FIELDOPS__HTTP__PORT", port.to_string())
        .env("FIELDOPS__AUTH__TOKEN_SECRET", settings.auth.token_secret.expose_secret());
    cmd
}

/// Starts a service binary the way an operator does (no arguments, `FIELDOPS__` variables),
/// waits until `/health/ready` answers 200, sends SIGTERM and returns the exit status.
pub async fn run_binary_then_sigterm(bin: &str) -> std::process::ExitStatus {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = settings().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = service_command(bin, &s, port).env("RUST_LOG", "warn").kill_on_drop(true).spawn().expect("the binary starts");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ready = async {
            let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            c.write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n").await.ok()?;
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).await.ok()?;
            String::from_utf8_lossy(&buf).starts_with("HTTP/1.0 200").then_some(())
        };
        if ready.await.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{bin} never became ready");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{bin} exited early with {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = child.id().expect("running").to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await.expect("exits within 30 s of SIGTERM").unwrap()
}
