//! The system under test, run in-process: hq-console, dispatcher and city-agent-api built from
//! their libraries against a fresh database and a fresh Redis prefix; then one directive is
//! timed from `POST /directives` until every task it made is `delivered`.
//!
//! Where the time goes is read from the timestamps the services already write:
//! `directive.created_at` / `dispatched_at`, `task.delivered_at`, the commit of the
//! materialising transaction (seen by the 50 ms poller as `status = 'dispatched'`), and the
//! last stream id the relay generated on each city stream (Redis ids are milliseconds).

use std::time::{Duration, Instant};

use anyhow::Context;
use fieldops_core::Settings;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cpu::{self, CpuSeconds};
use crate::seed::Api;

/// The three services running in this process.
pub struct Services {
    pub hq_port: u16,
    running: Vec<(&'static str, CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

impl Services {
    /// hq-console first (it migrates and creates the bootstrap admin), then the other two.
    pub async fn start(settings: &Settings) -> anyhow::Result<Services> {
        let (hq_port, t1, h1) = hq_console::build(settings.clone()).await.context("hq-console")?.spawn();
        let (_, t2, h2) = dispatcher::build(settings.clone()).await.context("dispatcher")?.spawn();
        let (_, t3, h3) = city_agent_api::build(settings.clone()).await.context("city-agent-api")?.spawn();
        Ok(Services { hq_port, running: vec![("hq-console", t1, h1), ("dispatcher", t2, h2), ("city-agent-api", t3, h3)] })
    }

    pub async fn stop(self) {
        for (_, token, _) in &self.running {
            token.cancel();
        }
        for (name, _, handle) in self.running {
            match tokio::time::timeout(Duration::from_secs(30), handle).await {
                Ok(Ok(Ok(()))) => {}
                other => eprintln!("warning: {name} did not stop cleanly: {other:?}"),
            }
        }
    }
}

/// What one timed directive measured; times in seconds from `t0` (just before the POST).
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub tasks: i64,
    pub tasks_per_s: f64,
    /// t0 -> last `task.delivered_at`.
    pub e2e_s: f64,
    /// `directive.created_at` -> `dispatched_at` (the dispatcher stamps `now()`, i.e. the START of its transaction).
    pub pickup_s: f64,
    /// t0 -> the materialising transaction's commit (first poll that sees `dispatched`; +-50 ms).
    pub materialised_s: f64,
    /// t0 -> the relay's last XADD of a task message (max over city streams of the last generated id).
    pub relayed_s: Option<f64>,
    pub first_delivered_s: f64,
    pub last_delivered_s: f64,
    /// Latency `directive.created_at` -> `task.delivered_at`.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// `GET /directives/{id}` counts.delivered after the feedback consumer caught up (or gave up).
    pub counts_delivered: i64,
    /// Seconds after the last delivery until counts.delivered reached the total (None: not within 30 s).
    pub counts_lag_s: Option<f64>,
    /// CPU seconds from POST until the materialising commit was seen.
    pub cpu_materialise: CpuSeconds,
    /// CPU seconds from then until the last task was delivered.
    pub cpu_relay_deliver: CpuSeconds,
    /// The completion poll's own cost: how many count queries ran and their total time.
    pub poll_count_queries: u32,
    pub poll_count_ms_total: f64,
}

const DIRECTIVE: &str = "category == 'restaurant'";

/// Posts the directive and waits until all `expected` tasks are delivered (timeout 15 min).
pub async fn run_directive(
    api: &Api,
    db: &PgPool,
    redis: &redis::Client,
    settings: &Settings,
    cities: usize,
    expected: i64,
) -> anyhow::Result<Measured> {
    let body = json!({
        "name": "bench",
        "target": {"cities": [], "territories": [], "area": null, "accounts": DIRECTIVE},
        "task": {"title": "Visit {{account.name}}", "instructions": "x", "priority": "high", "due_in": "48h", "require_checkin": false, "form": []},
        "assignment": "owner"
    });
    let cpu0 = cpu::snapshot();
    let t0 = epoch_now();
    let started = Instant::now();
    let out = api.call(Method::POST, "/directives", Some(&body), StatusCode::ACCEPTED).await?;
    let id = out["id"].as_str().context("directive answer has no id")?.to_string();
    let mut materialised_s = None;
    let mut cpu1 = None;
    let (mut polls, mut poll_ms) = (0u32, 0.0f64);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        anyhow::ensure!(started.elapsed() < Duration::from_secs(900), "directive {id} not fully delivered after 15 minutes");
        if materialised_s.is_none() {
            let (status, error): (String, Option<String>) =
                sqlx::query_as("select status, error from directive where id = $1").bind(&id).fetch_one(db).await?;
            match status.as_str() {
                "pending" | "dispatching" => {}
                "dispatched" => {
                    materialised_s = Some(epoch_now() - t0);
                    cpu1 = Some(cpu::snapshot());
                }
                other => anyhow::bail!("directive {id} is {other}: {error:?}"),
            }
        }
        if materialised_s.is_none() {
            continue; // counted once every chunk is written (delivery of early chunks is already under way)
        }
        let q = Instant::now();
        let delivered: i64 = sqlx::query_scalar("select count(*) from task where directive_id = $1 and status = 'delivered'")
            .bind(&id)
            .fetch_one(db)
            .await?;
        polls += 1;
        poll_ms += q.elapsed().as_secs_f64() * 1000.0;
        if delivered >= expected {
            break;
        }
    }
    let cpu2 = cpu::snapshot();
    let cpu1 = cpu1.context("materialised and delivered within one poll")?;
    let total: i64 = sqlx::query_scalar("select count(*) from task where directive_id = $1").bind(&id).fetch_one(db).await?;
    anyhow::ensure!(total == expected, "directive made {total} tasks, expected {expected}");
    let (created, dispatched, first, last, p50, p99): (f64, f64, f64, f64, f64, f64) = sqlx::query_as(
        "select extract(epoch from d.created_at)::float8, extract(epoch from d.dispatched_at)::float8,
                extract(epoch from min(t.delivered_at))::float8, extract(epoch from max(t.delivered_at))::float8,
                (percentile_cont(0.5) within group (order by extract(epoch from t.delivered_at - d.created_at)) * 1000)::float8,
                (percentile_cont(0.99) within group (order by extract(epoch from t.delivered_at - d.created_at)) * 1000)::float8
         from directive d join task t on t.directive_id = d.id where d.id = $1 group by d.id",
    )
    .bind(&id)
    .fetch_one(db)
    .await?;
    let relayed_s = last_xadd_ms(redis, settings, cities).await?.map(|ms| ms as f64 / 1000.0 - t0);
    let e2e_s = last - t0;
    let (counts_delivered, counts_at) = wait_counts(api, &id, expected).await?;
    Ok(Measured {
        tasks: total,
        tasks_per_s: expected as f64 / e2e_s,
        e2e_s,
        pickup_s: dispatched - created,
        materialised_s: materialised_s.unwrap_or(f64::NAN),
        relayed_s,
        first_delivered_s: first - t0,
        last_delivered_s: e2e_s,
        p50_ms: p50,
        p99_ms: p99,
        counts_delivered,
        counts_lag_s: counts_at.map(|at| at - last),
        cpu_materialise: cpu0.until(&cpu1),
        cpu_relay_deliver: cpu1.until(&cpu2),
        poll_count_queries: polls,
        poll_count_ms_total: poll_ms,
    })
}

/// Polls `GET /directives/{id}` until counts.delivered reaches `expected` (30 s at most).
/// Returns the count and the epoch second it was first seen complete.
async fn wait_counts(api: &Api, id: &str, expected: i64) -> anyhow::Result<(i64, Option<f64>)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = api.call(Method::GET, &format!("/directives/{id}"), None, StatusCode::OK).await?;
        let n = d["counts"]["delivered"].as_i64().unwrap_or(0);
        if n >= expected {
            return Ok((n, Some(epoch_now())));
        }
        if Instant::now() > deadline {
            return Ok((n, None));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Milliseconds of the newest id generated on any city stream.
async fn last_xadd_ms(redis: &redis::Client, settings: &Settings, cities: usize) -> anyhow::Result<Option<u64>> {
    let keys = fieldops_core::queue::Keys::new(settings.redis.prefix.clone());
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let mut newest = None;
    for c in 0..cities {
        let info: redis::Value = redis::cmd("XINFO").arg("STREAM").arg(keys.city_tasks(&format!("c{c}"))).query_async(&mut conn).await?;
        let id = field(&info, "last-generated-id");
        let ms = id.as_deref().and_then(|s| s.split('-').next()).and_then(|s| s.parse::<u64>().ok());
        newest = newest.max(ms);
    }
    Ok(newest)
}

/// A string field of an XINFO reply (RESP2 flat array or RESP3 map).
fn field(v: &redis::Value, name: &str) -> Option<String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match v {
        redis::Value::Array(items) => {
            items.chunks(2).find(|kv| text(&kv[0]).as_deref() == Some(name)).and_then(|kv| kv.get(1).and_then(text))
        }
        redis::Value::Map(kv) => kv.iter().find(|(k, _)| text(k).as_deref() == Some(name)).and_then(|(_, v)| text(v)),
        _ => None,
    }
}

pub fn epoch_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}
