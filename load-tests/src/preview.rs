//! Rule preview on the seeded accounts (not part of the fan-out's timed window).
//!
//! After seeding and BEFORE the fan-out directive: create a manual rule whose filter matches
//! about half of the accounts (`gmv_30d > 5000`, see `seed::gmv_30d`), then time
//! `POST /api/v1/rules/{id}/preview` over HTTP (first call, then `runs` more: best and median),
//! and check that its `tasks` equals the number of seeded accounts the filter matches.
//!
//! Then, to see where a preview's time goes, the same work is done in this process against the
//! same database (no HTTP): the account query of `fieldops_core::dispatch::resolve` alone
//! (fetched and decoded into rows), building every account's facts and evaluating the compiled
//! filter on them, and `resolve` itself (read-only transaction, rolled back).
//!
//! After the fan-out (or at once with `--preview-only`): the preview again (with the fan-out's
//! open tasks in the `task` table), then `POST /rules/{id}/fire`, and the number of tasks the
//! fired directive made is compared with the preview's `tasks`.

use std::time::{Duration, Instant};

use anyhow::Context;
use fieldops_core::dispatch::{ACCOUNTS_SQL, AccountRow};
use fieldops_core::rules::expr::Expr;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::cpu::{self, CpuSeconds};
use crate::seed::Api;

pub const RULE_FILTER: &str = "category == 'restaurant' && gmv_30d > 5000";

/// Timings of one series of `POST /rules/{id}/preview` calls, in ms, measured by the client.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub first_ms: f64,
    /// The calls after the first.
    pub runs_ms: Vec<f64>,
    pub best_ms: f64,
    pub median_ms: f64,
    /// CPU seconds during the calls after the first.
    pub cpu: CpuSeconds,
}

/// The same work as a preview, done in this process (no HTTP), best of 3, in ms.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// `account_schema` + `Expr::compile` of the filter.
    pub compile_ms: f64,
    /// resolve's account query (accounts joined with territory and owner, with attributes), fetched and decoded.
    pub accounts_query_ms: f64,
    pub accounts_rows: usize,
    /// Building each account's facts (attributes cloned + built-ins) and evaluating the filter on all of them.
    pub facts_and_filter_ms: f64,
    /// `fieldops_core::dispatch::resolve` itself (includes the two above, rendering and assignment).
    pub resolve_ms: f64,
    pub resolve_tasks: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fired {
    pub directive_id: String,
    /// The tasks the fired directive made.
    pub tasks: i64,
    pub matches_preview: bool,
    /// POST /fire -> directive seen `dispatched` (poll every 50 ms).
    pub materialised_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub rule_id: String,
    pub filter: String,
    /// Seeded accounts the filter matches (computed from the seed).
    pub expected_tasks: i64,
    /// What the preview answered.
    pub tasks: i64,
    pub skipped: usize,
    pub by_city: usize,
    pub agents_with_new_tasks: usize,
    pub response_bytes: usize,
    /// Before the fan-out: `task` is empty.
    pub before_fanout: Series,
    pub breakdown: Breakdown,
    /// After the fan-out: every agent has open tasks (None with --preview-only).
    pub after_fanout: Option<Series>,
    pub fired: Option<Fired>,
}

/// Creates the rule (manual trigger, assignment owner); returns its id.
pub async fn create_rule(api: &Api) -> anyhow::Result<String> {
    let body = json!({
        "name": "bench preview",
        "trigger": {"kind": "manual"},
        "target": {"cities": [], "territories": [], "area": null, "accounts": RULE_FILTER},
        "task": {"title": "Visit {{account.name}}", "instructions": "x", "priority": "high", "due_in": "48h", "require_checkin": false, "form": []},
        "assignment": "owner"
    });
    let out = api.call(Method::POST, "/rules", Some(&body), StatusCode::CREATED).await?;
    Ok(out["id"].as_str().context("rule answer has no id")?.to_string())
}

/// One preview call: (ms, answer, answer size).
async fn call(api: &Api, rule: &str) -> anyhow::Result<(f64, Value, usize)> {
    let t = Instant::now();
    let out = api.call(Method::POST, &format!("/rules/{rule}/preview"), None, StatusCode::OK).await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let bytes = out.to_string().len();
    Ok((ms, out, bytes))
}

async fn series(api: &Api, rule: &str, runs: usize) -> anyhow::Result<(Series, Value, usize)> {
    let (first_ms, answer, bytes) = call(api, rule).await?;
    let cpu0 = cpu::snapshot();
    let mut runs_ms = Vec::new();
    for _ in 0..runs {
        let (ms, again, _) = call(api, rule).await?;
        anyhow::ensure!(again["tasks"] == answer["tasks"], "preview answers differ: {} vs {}", again["tasks"], answer["tasks"]);
        runs_ms.push(ms);
    }
    let cpu = cpu0.until(&cpu::snapshot());
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let best_ms = sorted.first().copied().unwrap_or(first_ms);
    let median_ms = if sorted.is_empty() { first_ms } else { sorted[sorted.len() / 2] };
    Ok((Series { first_ms, runs_ms, best_ms, median_ms, cpu }, answer, bytes))
}

/// Before the fan-out: the timed previews, the check against the seed, the in-process breakdown.
pub async fn measure(api: &Api, db: &PgPool, rule: &str, runs: usize, expected_tasks: i64) -> anyhow::Result<Preview> {
    let (before_fanout, answer, response_bytes) = series(api, rule, runs).await?;
    let tasks = answer["tasks"].as_i64().context("preview answer has no tasks")?;
    anyhow::ensure!(tasks == expected_tasks, "preview predicts {tasks} tasks, the seed has {expected_tasks} matching accounts");
    let breakdown = breakdown(db, rule).await?;
    anyhow::ensure!(breakdown.resolve_tasks as i64 == tasks, "resolve made {} tasks, the preview said {tasks}", breakdown.resolve_tasks);
    Ok(Preview {
        rule_id: rule.to_string(),
        filter: RULE_FILTER.to_string(),
        expected_tasks,
        tasks,
        skipped: answer["skipped"].as_array().map(Vec::len).unwrap_or(0),
        by_city: answer["by_city"].as_array().map(Vec::len).unwrap_or(0),
        agents_with_new_tasks: answer["load"].as_array().map(Vec::len).unwrap_or(0),
        response_bytes,
        before_fanout,
        breakdown,
        after_fanout: None,
        fired: None,
    })
}

/// After the fan-out: the previews again, then fire the rule and count the tasks it makes.
pub async fn after(api: &Api, db: &PgPool, p: &mut Preview, runs: usize, fanout_done: bool) -> anyhow::Result<()> {
    if fanout_done {
        let (s, answer, _) = series(api, &p.rule_id, runs).await?;
        anyhow::ensure!(
            answer["tasks"].as_i64() == Some(p.tasks),
            "preview after the fan-out answers {}, before {}",
            answer["tasks"],
            p.tasks
        );
        p.after_fanout = Some(s);
    }
    let t = Instant::now();
    let out = api.call(Method::POST, &format!("/rules/{}/fire", p.rule_id), None, StatusCode::ACCEPTED).await?;
    let id = out["id"].as_str().context("fire answer has no directive id")?.to_string();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "fired directive {id} not dispatched after 10 minutes");
        let (status, error): (String, Option<String>) =
            sqlx::query_as("select status, error from directive where id = $1").bind(&id).fetch_one(db).await?;
        match status.as_str() {
            "pending" | "dispatching" => continue,
            "dispatched" => break,
            other => anyhow::bail!("fired directive {id} is {other}: {error:?}"),
        }
    }
    let materialised_s = t.elapsed().as_secs_f64();
    let tasks: i64 = sqlx::query_scalar("select count(*) from task where directive_id = $1").bind(&id).fetch_one(db).await?;
    p.fired = Some(Fired { directive_id: id, tasks, matches_preview: tasks == p.tasks, materialised_s });
    Ok(())
}

/// resolve's account query, with the same columns and types.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

async fn breakdown(db: &PgPool, rule_id: &str) -> anyhow::Result<Breakdown> {
    let mut b = Breakdown {
        compile_ms: f64::MAX,
        accounts_query_ms: f64::MAX,
        accounts_rows: 0,
        facts_and_filter_ms: f64::MAX,
        resolve_ms: f64::MAX,
        resolve_tasks: 0,
    };
    for _ in 0..3 {
        let mut tx = db.begin().await?;
        sqlx::query("set transaction read only").execute(&mut *tx).await?;
        let rule = fieldops_core::store::rules::get(&mut tx, rule_id, false).await?.context("rule not found")?;
        let body = rule.body.0;
        let src = body.target.accounts.clone().context("rule has no account filter")?;
        let cities: Vec<String> = sqlx::query_scalar("select id from city order by id").fetch_all(&mut *tx).await?;

        let t = Instant::now();
        let schema = fieldops_core::store::rules::account_schema(&mut tx).await?;
        let filter = Expr::compile(&src, &schema).map_err(|e| anyhow::anyhow!("compile: {}", e.message))?;
        b.compile_ms = b.compile_ms.min(ms(t));

        let t = Instant::now();
        let rows: Vec<AccountRow> = sqlx::query_as(ACCOUNTS_SQL).bind(&cities).bind(&body.target.territories).fetch_all(&mut *tx).await?;
        b.accounts_query_ms = b.accounts_query_ms.min(ms(t));
        b.accounts_rows = rows.len();

        let t = Instant::now();
        let now = chrono::Utc::now();
        let matched = rows.iter().filter(|a| filter.matches(&a.facts(now))).count();
        b.facts_and_filter_ms = b.facts_and_filter_ms.min(ms(t));
        drop(rows);

        let t = Instant::now();
        let r = fieldops_core::dispatch::resolve(&mut tx, &body.target, &body.task, body.assignment).await?;
        b.resolve_ms = b.resolve_ms.min(ms(t));
        b.resolve_tasks = r.tasks.len();
        anyhow::ensure!(
            matched == r.tasks.len() + r.skipped.len(),
            "filter matched {matched}, resolve made {} (+{} skipped)",
            r.tasks.len(),
            r.skipped.len()
        );
        tx.rollback().await?;
    }
    Ok(b)
}
