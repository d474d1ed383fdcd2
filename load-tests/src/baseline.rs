//! The two baselines the system is compared against:
//!
//! - **A, Redis**: `redis-benchmark` pipelining `XADD` of a ~300-byte field into one stream
//!   (`-P 64`), i.e. the best Redis can do on this machine for stream appends.
//! - **B, PostgreSQL**: one `COPY ... FROM STDIN` of task-shaped rows into a scratch table created
//!   `LIKE task INCLUDING ALL` (same columns, defaults, checks and all six indexes, no foreign
//!   keys), i.e. the best PostgreSQL can do for writing the rows the dispatcher writes.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use sqlx::{Connection, PgConnection};

/// Runs `redis-benchmark` and returns its requests/s. The stream key is deleted afterwards.
pub async fn redis_xadd(redis_url: &str, requests: u64) -> anyhow::Result<f64> {
    let key = format!("fieldops-bench:{{raw}}:{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let payload = "x".repeat(300);
    let (host, port) = host_port(redis_url);
    let out = Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port, "-P", "64", "-n", &requests.to_string(), "-q"])
        .args(["XADD", &key, "*", "m", &payload])
        .output()
        .context("running redis-benchmark (apt package redis-tools)")?;
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "redis-benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    parse_rps(&text).with_context(|| format!("no 'requests per second' in redis-benchmark output: {text}"))
}

/// The last `<number> requests per second` in redis-benchmark's (carriage-return-laden) output.
fn parse_rps(text: &str) -> Option<f64> {
    let at = text.rfind("requests per second")?;
    text[..at].split_whitespace().last()?.parse().ok()
}

fn host_port(url: &str) -> (String, String) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (rest.to_string(), "6379".to_string()),
    }
}

/// COPYs `rows` task-shaped rows into a scratch copy of `task`; returns rows/s (COPY time only).
pub async fn pg_copy(db_url: &str, rows: usize, cities: usize) -> anyhow::Result<f64> {
    let mut conn = PgConnection::connect(db_url).await?;
    sqlx::query("drop table if exists bench_copy_task").execute(&mut conn).await?;
    sqlx::query("create table bench_copy_task (like task including all)").execute(&mut conn).await?;
    let data = task_csv(rows, cities);
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "copy bench_copy_task (id, directive_id, city_id, territory_id, team_id, account_id, assignee_id, status,
                                   priority, title, instructions, form, require_checkin, due_at) from stdin (format csv)",
        )
        .await?;
    for chunk in data.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(copied as usize == rows, "COPY wrote {copied} rows, expected {rows}");
    sqlx::query("drop table bench_copy_task").execute(&mut conn).await?;
    conn.close().await?;
    Ok(rows as f64 / secs)
}

/// CSV rows shaped like the dispatcher's: uuid-v7 ids, one directive, accounts spread over cities.
fn task_csv(rows: usize, cities: usize) -> String {
    let directive = fieldops_core::domain::new_id("dir");
    let due = (chrono::Utc::now() + chrono::Duration::hours(48)).to_rfc3339();
    let mut out = String::with_capacity(rows * 260);
    for i in 0..rows {
        let c = i % cities.max(1);
        let t = (i / cities.max(1)) % 4;
        let _ = writeln!(
            out,
            "{},{directive},c{c},c{c}-t{t},c{c}-team{t},acc-{c}-{i},c{c}-agent-{t}-{},queued,high,Visit Account {i},x,[],f,{due}",
            fieldops_core::domain::new_id("task"),
            i % 5,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_quiet_output() {
        let text = "XADD k * m xxx: rps=0.0 (overall: nan) avg_msec=nan\rXADD k * m xxx: 312500.00 requests per second, p50=0.151 msec\n";
        assert_eq!(super::parse_rps(text), Some(312500.0));
    }

    #[test]
    fn splits_redis_url() {
        assert_eq!(super::host_port("redis://127.0.0.1:6379"), ("127.0.0.1".into(), "6379".into()));
        assert_eq!(super::host_port("redis://:pw@h:7000/0"), ("h".into(), "7000".into()));
    }
}
