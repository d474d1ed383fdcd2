//! `fieldops-bench`: one run measures, side by side,
//! A. raw pipelined Redis `XADD` (redis-benchmark),
//! B. raw PostgreSQL `COPY` of task-shaped rows,
//! S. the system: one directive fanned out to every account, materialised by the dispatcher,
//!    relayed from the outbox to Redis, delivered by city-agent-api's workers.
//!
//! P. (before S, not in its timed window) a strategy rule's preview on the same accounts, and
//!    after S the rule fired, to check the preview's task count.
//!
//! Usage: `fieldops-bench [--accounts N] [--cities N] [--agents-per-city N] [--json PATH]
//! [--no-preview | --preview-only] [--preview-runs N]`.
//! PostgreSQL and Redis come from `FIELDOPS__DATABASE__URL` / `FIELDOPS__REDIS__URL` (defaults:
//! the local servers). A database `fieldops_bench_<random>` and the Redis prefix
//! `fieldops-bench:<random>:` are created for the run and removed at the end.

mod baseline;
mod cpu;
mod preview;
mod report;
mod seed;
mod system;

use std::time::Duration;

use anyhow::Context;
use fieldops_core::Settings;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, PgConnection};

struct Args {
    accounts: usize,
    cities: usize,
    agents_per_city: usize,
    redis_requests: u64,
    json: Option<String>,
    keep_db: bool,
    /// Experiment: drop the task foreign keys the materialiser guarantees itself before timing.
    drop_task_fks: bool,
    /// Measure the rule preview (P) too (default; `--no-preview` skips it).
    preview: bool,
    /// Only seed, preview and fire the rule: no A, B or fan-out.
    preview_only: bool,
    /// Preview calls after the first (best and median of these).
    preview_runs: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        accounts: 100_000,
        cities: 10,
        agents_per_city: 20,
        redis_requests: 200_000,
        json: None,
        keep_db: false,
        drop_task_fks: false,
        preview: true,
        preview_only: false,
        preview_runs: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--accounts" => a.accounts = value()?.parse()?,
            "--cities" => a.cities = value()?.parse()?,
            "--agents-per-city" => a.agents_per_city = value()?.parse()?,
            "--redis-requests" => a.redis_requests = value()?.parse()?,
            "--json" => a.json = Some(value()?),
            "--keep-db" => a.keep_db = true,
            "--drop-task-fks" => a.drop_task_fks = true,
            "--no-preview" => a.preview = false,
            "--preview-only" => a.preview_only = true,
            "--preview-runs" => a.preview_runs = value()?.parse()?,
            "-h" | "--help" => {
                println!(
                    "fieldops-bench [--accounts 100000] [--cities 10] [--agents-per-city 20] [--redis-requests 200000] [--json PATH] [--keep-db] [--drop-task-fks] [--no-preview | --preview-only] [--preview-runs 5]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other} (try --help)"),
        }
    }
    anyhow::ensure!(a.preview || !a.preview_only, "--no-preview and --preview-only exclude each other");
    anyhow::ensure!(a.cities > 0 && a.accounts > 0 && a.agents_per_city >= 4, "need cities > 0, accounts > 0, agents-per-city >= 4");
    Ok(a)
}

fn with_db(url: &str, db: &str) -> String {
    let (head, _) = url.rsplit_once('/').expect("database url has a path");
    let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{head}/{db}{query}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = args()?;
    let base_url = std::env::var("FIELDOPS__DATABASE__URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/fieldops".into());
    let redis_url = std::env::var("FIELDOPS__REDIS__URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());

    let redis_rate = if args.preview_only {
        None
    } else {
        eprintln!("[A] redis-benchmark XADD ...");
        Some(baseline::redis_xadd(&redis_url, args.redis_requests).await?)
    };

    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let db_name = format!("fieldops_bench_{tag}");
    let mut admin = PgConnection::connect(&with_db(&base_url, "postgres")).await.context("connect to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db_name}"))).execute(&mut admin).await?;
    let mut settings = Settings::defaults();
    settings.database.url = SecretString::from(with_db(&base_url, &db_name));
    settings.redis.url = SecretString::from(redis_url.clone());
    settings.redis.prefix = format!("fieldops-bench:{tag}:");
    settings.http.port = 0;
    settings.http.shutdown_timeout_secs = 5;
    settings.auth.token_secret = SecretString::from(format!("bench-secret-{}", uuid::Uuid::new_v4().simple()));
    settings.auth.bootstrap_admin_username = "bench-admin".into();
    settings.auth.bootstrap_admin_password = SecretString::from("bench-admin-password-123");
    settings.auth.cookie_secure = false;
    settings.validate()?;

    let result = run(&args, &settings, redis_rate).await;

    // clean up whatever happened (--keep-db keeps the database for EXPLAIN ANALYZE)
    if args.keep_db {
        eprintln!("kept database {db_name}");
    } else if let Err(e) =
        sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists {db_name} with (force)"))).execute(&mut admin).await
    {
        eprintln!("warning: dropping {db_name}: {e}");
    }
    if let Err(e) = drop_redis_prefix(&redis_url, &settings.redis.prefix).await {
        eprintln!("warning: deleting Redis keys {}*: {e}", settings.redis.prefix);
    }
    let report = result?;
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {path}"))?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

async fn run(args: &Args, settings: &Settings, redis_rate: Option<f64>) -> anyhow::Result<report::Report> {
    let db = fieldops_core::platform::db::connect(&settings.database).await?;
    fieldops_core::platform::db::migrate(&db).await?;
    let copy_rate = if args.preview_only {
        None
    } else {
        eprintln!("[B] PostgreSQL COPY of {} task rows ...", args.accounts);
        Some(baseline::pg_copy(settings.database.url.expose_secret(), args.accounts, args.cities).await?)
    };

    eprintln!("[S] starting hq-console, dispatcher, city-agent-api in-process ...");
    let services = system::Services::start(settings).await?;
    let measured = async {
        let api = seed::Api::login(
            services.hq_port,
            &settings.auth.bootstrap_admin_username,
            settings.auth.bootstrap_admin_password.expose_secret(),
        )
        .await?;
        let seeding = std::time::Instant::now();
        let imported = seed::seed(&api, args.cities, args.agents_per_city, args.accounts).await?;
        anyhow::ensure!(imported == args.accounts, "imported {imported} accounts, expected {}", args.accounts);
        let redis = redis::Client::open(settings.redis.url.expose_secret())?;
        wait_for_delivery_groups(&redis, settings, args.cities).await?;
        if args.drop_task_fks {
            eprintln!("    EXPERIMENT: dropping the task foreign keys to city, team, account and app_user in this scratch database");
            sqlx::query(
                "alter table task drop constraint task_city_id_fkey, drop constraint task_team_id_fkey,
                                  drop constraint task_account_id_fkey, drop constraint task_assignee_id_fkey",
            )
            .execute(&db)
            .await?;
        }
        sqlx::query("vacuum analyze").execute(&db).await?;
        eprintln!("    seeded {imported} accounts in {:.1} s", seeding.elapsed().as_secs_f64());
        let mut preview = None;
        if args.preview {
            let expected = (0..args.accounts).filter(|&i| seed::gmv_30d(i) > 5000).count() as i64;
            eprintln!("[P] rule `{}` ({expected} matching accounts): timing POST /rules/{{id}}/preview ...", preview::RULE_FILTER);
            let rule = preview::create_rule(&api).await?;
            preview = Some(preview::measure(&api, &db, &rule, args.preview_runs, expected).await?);
        }
        let system = if args.preview_only {
            None
        } else {
            eprintln!("[S] timing the directive ...");
            Some(system::run_directive(&api, &db, &redis, settings, args.cities, args.accounts as i64).await?)
        };
        if let Some(p) = &mut preview {
            eprintln!("[P] {}firing the rule ...", if system.is_some() { "previews after the fan-out, then " } else { "" });
            preview::after(&api, &db, p, args.preview_runs, system.is_some()).await?;
        }
        Ok::<_, anyhow::Error>((system, preview))
    }
    .await;
    services.stop().await;
    db.close().await;
    let (system, preview) = measured?;
    let mut report = report::Report::new(args.accounts, args.cities, args.agents_per_city, redis_rate, copy_rate, system, preview);
    report.experiment = args.drop_task_fks.then(|| "task foreign keys to city, team, account, app_user dropped".to_string());
    Ok(report)
}

/// The delivery workers discover cities every 2 s; wait until each city's consumer group exists.
async fn wait_for_delivery_groups(redis: &redis::Client, settings: &Settings, cities: usize) -> anyhow::Result<()> {
    let keys = fieldops_core::queue::Keys::new(settings.redis.prefix.clone());
    let mut conn = redis.get_multiplexed_async_connection().await?;
    for _ in 0..100 {
        let mut ready = 0;
        for c in 0..cities {
            let n: i64 = redis::cmd("EXISTS").arg(keys.city_tasks(&format!("c{c}"))).query_async(&mut conn).await?;
            ready += n;
        }
        if ready == cities as i64 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("delivery workers did not create their consumer groups within 10 s")
}

/// Deletes every key under the run's prefix.
async fn drop_redis_prefix(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(format!("{prefix}*")).arg("COUNT").arg(1000).query_async(&mut conn).await?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
