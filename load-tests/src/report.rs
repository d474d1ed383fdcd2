//! The result of one run: a table on stdout and, optionally, the same figures as JSON.

use serde::Serialize;

use crate::preview::Preview;
use crate::system::Measured;

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub cores: usize,
    pub accounts: usize,
    pub cities: usize,
    pub agents_per_city: usize,
    /// Baseline A: redis-benchmark XADD, pipelined 64, requests/s (None with --preview-only).
    pub redis_xadd_per_s: Option<f64>,
    /// Baseline B: COPY into a `LIKE task INCLUDING ALL` table, rows/s (None with --preview-only).
    pub pg_copy_rows_per_s: Option<f64>,
    /// The fan-out (None with --preview-only).
    pub system: Option<Measured>,
    pub system_vs_redis: Option<f64>,
    pub system_vs_copy: Option<f64>,
    /// The rule preview (None with --no-preview).
    pub preview: Option<Preview>,
    /// Set when the run changed the schema of its scratch database (not the shipped system).
    pub experiment: Option<String>,
}

impl Report {
    pub fn new(
        accounts: usize,
        cities: usize,
        agents_per_city: usize,
        redis_xadd_per_s: Option<f64>,
        pg_copy_rows_per_s: Option<f64>,
        system: Option<Measured>,
        preview: Option<Preview>,
    ) -> Report {
        let rate = system.as_ref().map(|s| s.tasks_per_s);
        Report {
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            accounts,
            cities,
            agents_per_city,
            redis_xadd_per_s,
            pg_copy_rows_per_s,
            system_vs_redis: rate.zip(redis_xadd_per_s).map(|(s, r)| s / r),
            system_vs_copy: rate.zip(pg_copy_rows_per_s).map(|(s, c)| s / c),
            system,
            preview,
            experiment: None,
        }
    }

    pub fn print(&self) {
        let line = "-".repeat(78);
        println!("{line}");
        println!(
            "fieldops load test  {}  ({} cores)  {} accounts / {} cities / {} agents per city",
            self.date, self.cores, self.accounts, self.cities, self.agents_per_city
        );
        if let Some(e) = &self.experiment {
            println!("EXPERIMENT (not the shipped schema): {e}");
        }
        println!("{line}");
        if let (Some(s), Some(redis), Some(copy), Some(vs_redis), Some(vs_copy)) =
            (&self.system, self.redis_xadd_per_s, self.pg_copy_rows_per_s, self.system_vs_redis, self.system_vs_copy)
        {
            self.print_fanout(s, redis, copy, vs_redis, vs_copy, &line);
        }
        if let Some(p) = &self.preview {
            print_preview(p, &line);
        }
    }

    fn print_fanout(&self, s: &Measured, redis: f64, copy: f64, vs_redis: f64, vs_copy: f64, line: &str) {
        println!("{:<52} {:>14} {:>10}", "measure", "rate/s", "system is");
        println!("{:<52} {:>14.0} {:>9.1}%", "A  redis-benchmark XADD -P 64 (requests/s)", redis, 100.0 * vs_redis);
        println!("{:<52} {:>14.0} {:>9.1}%", "B  PostgreSQL COPY into task-shaped table (rows/s)", copy, 100.0 * vs_copy);
        println!("{:<52} {:>14.0} {:>10}", "S  directive -> all tasks delivered (tasks/s)", s.tasks_per_s, "");
        println!("{line}");
        println!("timeline of the directive (seconds after POST /directives)");
        println!("  {:<60} {:>10.3}", "picked up (directive.dispatched_at - created_at)", s.pickup_s);
        println!("  {:<60} {:>10.3}", "materialised: transaction committed (poll, +-50 ms)", s.materialised_s);
        match s.relayed_s {
            Some(r) => println!("  {:<60} {:>10.3}", "relayed: last XADD on a city stream", r),
            None => println!("  {:<60} {:>10}", "relayed: last XADD on a city stream", "n/a"),
        }
        println!("  {:<60} {:>10.3}", "first task delivered", s.first_delivered_s);
        println!("  {:<60} {:>10.3}", "last task delivered (end to end)", s.last_delivered_s);
        println!(
            "  {:<60} {:>10.0}",
            "delivery rate, first -> last delivered (tasks/s)",
            s.tasks as f64 / (s.last_delivered_s - s.first_delivered_s).max(1e-9)
        );
        println!("latency directive accepted -> task delivered");
        println!("  {:<60} {:>10.0}", "p50 (ms)", s.p50_ms);
        println!("  {:<60} {:>10.0}", "p99 (ms)", s.p99_ms);
        println!("CPU seconds (user+sys)             {:>12} {:>10} {:>8} {:>8}", "this process", "postgres", "redis", "other");
        for (phase, c) in [("POST -> materialise commit", &s.cpu_materialise), ("commit -> last delivered", &s.cpu_relay_deliver)] {
            println!("  {phase:<32} {:>12.2} {:>10.2} {:>8.2} {:>8.2}", c.bench_process, c.postgres, c.redis, c.other);
        }
        println!("  (the completion poll itself ran {} count queries, {:.0} ms in total)", s.poll_count_queries, s.poll_count_ms_total);
        println!("feedback (GET /directives/{{id}} counts.delivered)");
        match s.counts_lag_s {
            Some(lag) => {
                println!("  {:<60} {:>10}", format!("reached {} after the last delivery, s", s.counts_delivered), format!("{lag:.3}"))
            }
            None => println!("  {:<60} {:>10}", format!("NOT reached within 30 s: {} of {}", s.counts_delivered, s.tasks), "FAIL"),
        }
        println!("{line}");
    }
}

fn print_preview(p: &Preview, line: &str) {
    println!("P  rule preview: POST /rules/{{id}}/preview, `{}`", p.filter);
    println!("  {:<60} {:>10}", "tasks predicted (seeded accounts matching)", format!("{} ({})", p.tasks, p.expected_tasks));
    println!(
        "  {:<60} {:>10}",
        "by_city entries / agents with new tasks / skipped",
        format!("{} / {} / {}", p.by_city, p.agents_with_new_tasks, p.skipped)
    );
    println!("  {:<60} {:>10}", "answer size, bytes", p.response_bytes);
    let series = |label: &str, s: &crate::preview::Series| {
        println!("  {label}");
        println!("    {:<58} {:>10.0}", "first call, ms", s.first_ms);
        println!(
            "    {:<58} {:>10}",
            format!("next {}: best / median, ms", s.runs_ms.len()),
            format!("{:.0} / {:.0}", s.best_ms, s.median_ms)
        );
        println!(
            "    {:<58} {:>10}",
            "  CPU s during those: this process / postgres / other",
            format!("{:.2} / {:.2} / {:.2}", s.cpu.bench_process, s.cpu.postgres, s.cpu.other)
        );
    };
    series("before the fan-out (task table empty)", &p.before_fanout);
    if let Some(s) = &p.after_fanout {
        series("after the fan-out (every agent has open tasks)", s);
    }
    let b = &p.breakdown;
    println!("  the same work in this process, no HTTP (best of 3, ms)");
    println!("    {:<58} {:>10.1}", "account_schema + Expr::compile", b.compile_ms);
    println!("    {:<58} {:>10.0}", format!("resolve's account query, {} rows fetched + decoded", b.accounts_rows), b.accounts_query_ms);
    println!("    {:<58} {:>10.0}", "facts (attributes cloned) + filter on every account", b.facts_and_filter_ms);
    println!("    {:<58} {:>10.0}", format!("dispatch::resolve in total ({} tasks)", b.resolve_tasks), b.resolve_ms);
    if let Some(f) = &p.fired {
        println!(
            "  {:<60} {:>10}",
            "fired: tasks made by the directive (= preview?)",
            format!("{} ({})", f.tasks, if f.matches_preview { "yes" } else { "NO" })
        );
        println!("  {:<60} {:>10.3}", "fired: POST /fire -> dispatched, s", f.materialised_s);
    }
    println!("{line}");
}
