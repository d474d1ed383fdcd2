//! `summary`: poll `GET /api/v1/directives` and print a live per-city funnel table for every
//! directive, newest first, redrawn in place on a terminal and appended otherwise. Directives a
//! strategy rule made (they carry `rule_id`) are marked `[rule]`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::api::Api;

const COLUMNS: &[(&str, &str)] = &[
    ("queued", "queued"),
    ("delivered", "deliv"),
    ("accepted", "accept"),
    ("checked_in", "chk_in"),
    ("completed", "done"),
    ("rejected", "reject"),
    ("overdue", "overdue"),
    ("cancelled", "cancel"),
];

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// hq-console base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub hq: String,
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    #[arg(long, env = "FIELDOPS__AUTH__BOOTSTRAP_ADMIN_PASSWORD")]
    pub admin_password: String,
    /// Seconds between polls.
    #[arg(long, default_value_t = 3)]
    pub interval: u64,
    /// Directives shown (newest first, as the API lists them).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Read-only HQ user to fall back to when the admin may not read directives (403).
    #[arg(long, default_value = "coo")]
    pub fallback_user: String,
    #[arg(long, default_value = "demo-password")]
    pub fallback_password: String,
    /// Print once and exit.
    #[arg(long)]
    pub once: bool,
}

pub async fn run(args: SummaryArgs) -> Result<()> {
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let (mut user, mut password) = (args.admin_user.clone(), args.admin_password.clone());
    let mut api = Api::new(&args.hq)?.login(&user, &password).await?;
    loop {
        let r = api.get(&format!("/api/v1/directives?limit={}", args.limit.clamp(1, 500))).await;
        let text = match r {
            Ok(r) if r.status.as_u16() == 401 => {
                api = Api::new(&args.hq)?.login(&user, &password).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Ok(r) if r.status.as_u16() == 403 && user != args.fallback_user => {
                (user, password) = (args.fallback_user.clone(), args.fallback_password.clone());
                eprintln!("summary: {} may not read directives; reading as {user}", args.admin_user);
                api = Api::new(&args.hq)?.login(&user, &password).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Ok(r) if r.status.is_success() => render(&r.body, started, args.interval),
            Ok(r) => format!("summary: GET /api/v1/directives: {}\n", r.describe()),
            Err(e) => format!("summary: {e:#}\n"),
        };
        let mut out = std::io::stdout().lock();
        if tty && !args.once {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{text}")?;
        out.flush()?;
        if args.once {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The whole table for one poll.
pub fn render(list: &Value, started: Instant, interval: u64) -> String {
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    // newest first (RFC 3339 UTC strings sort by time; the API's order breaks ties)
    items.sort_by(|a, b| b["created_at"].as_str().unwrap_or("").cmp(a["created_at"].as_str().unwrap_or("")));
    let by_rule = items.iter().filter(|d| !d["rule_id"].is_null()).count();
    let mut s = format!(
        "fieldops directives: {} shown, newest first, {by_rule} made by rules, +{}s (refresh every {interval}s, Ctrl-C to stop)\n",
        items.len(),
        started.elapsed().as_secs()
    );
    if items.is_empty() {
        s.push_str("  (no directives yet)\n");
    }
    for d in &items {
        s.push('\n');
        let origin = if d["rule_id"].is_null() { "[manual]" } else { "[rule]" };
        let rule =
            if d["rule_id"].is_null() { String::new() } else { format!("  rule {} v{}", plain(&d["rule_id"]), plain(&d["rule_version"])) };
        s.push_str(&format!(
            "{origin:<8} {}  [{}]  status {}  created {}{rule}\n",
            d["name"].as_str().unwrap_or("?"),
            plain(&d["id"]),
            plain(&d["status"]),
            clock(&d["created_at"]),
        ));
        s.push_str(&format!("  {:<12}", "city"));
        for (_, label) in COLUMNS {
            s.push_str(&format!("{label:>8}"));
        }
        s.push_str(&format!("{:>8}{:>7}\n", "total", "done%"));
        for c in d["by_city"].as_array().into_iter().flatten() {
            s.push_str(&row(&plain(&c["city_id"]), &c["counts"]));
        }
        s.push_str(&row("all", &d["counts"]));
    }
    s
}

/// One table row; `overdue` is a subset of the open states, so it is not added to the total.
fn row(label: &str, counts: &Value) -> String {
    let n = |k: &str| counts[k].as_u64().unwrap_or(0);
    let mut s = format!("  {label:<12}");
    for (key, _) in COLUMNS {
        s.push_str(&format!("{:>8}", n(key)));
    }
    let total: u64 = COLUMNS.iter().filter(|(k, _)| *k != "overdue").map(|(k, _)| n(k)).sum();
    let pct = if total == 0 { 0.0 } else { 100.0 * n("completed") as f64 / total as f64 };
    s.push_str(&format!("{total:>8}{pct:>6.0}%\n"));
    s
}

/// `2026-12-04T20:56:40.88Z` → `20:56:40` (UTC), else as given.
fn clock(v: &Value) -> String {
    let t = plain(v);
    match t.split_once('T') {
        Some((_, rest)) if rest.len() >= 8 => format!("{} UTC", &rest[..8]),
        _ => t,
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_has_a_row_per_city_and_a_total() {
        let list = json!({"items": [{"id": "dir_1", "name": "Q4 push", "status": "running",
            "counts": {"queued": 1, "completed": 3, "overdue": 1},
            "by_city": [{"city_id": "shanghai", "counts": {"queued": 1, "completed": 1}},
                        {"city_id": "hangzhou", "counts": {"completed": 2}}]}], "next_cursor": null});
        let out = render(&list, Instant::now(), 3);
        assert!(out.contains("[manual] Q4 push  [dir_1]  status running"), "{out}");
        assert!(out.lines().any(|l| l.trim_start().starts_with("shanghai")));
        let all = out.lines().find(|l| l.trim_start().starts_with("all")).unwrap();
        assert!(all.ends_with("4    75%"), "{all}");
    }

    #[test]
    fn rule_directives_are_marked_and_the_newest_comes_first() {
        let list = json!({"items": [
            {"id": "dir_1", "name": "Old", "status": "dispatched", "rule_id": null, "created_at": "2026-12-04T10:00:00Z", "counts": {}, "by_city": []},
            {"id": "dir_2", "name": "Competitor subsidy: counter-visit", "status": "dispatched", "rule_id": "rule_9", "rule_version": 1,
             "created_at": "2026-12-04T11:00:00.5Z", "counts": {}, "by_city": []}], "next_cursor": null});
        let out = render(&list, Instant::now(), 3);
        let first = out.lines().find(|l| l.starts_with('[')).unwrap();
        assert!(first.starts_with("[rule]   Competitor subsidy"), "{out}");
        assert!(first.contains("rule rule_9 v1") && first.contains("created 11:00:00 UTC"), "{first}");
        assert!(out.contains("1 made by rules"), "{out}");
    }
}
