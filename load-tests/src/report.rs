//! The result of one run: a table on stdout and, optionally, the same figures as JSON.

use serde::Serialize;

use crate::system::Measured;

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub cores: usize,
    pub accounts: usize,
    pub cities: usize,
    pub agents_per_city: usize,
    /// Baseline A: redis-benchmark XADD, pipelined 64, requests/s.
    pub redis_xadd_per_s: f64,
    /// Baseline B: COPY into a `LIKE task INCLUDING ALL` table, rows/s.
    pub pg_copy_rows_per_s: f64,
    pub system: Measured,
    pub system_vs_redis: f64,
    pub system_vs_copy: f64,
    /// Set when the run changed the schema of its scratch database (not the shipped system).
    pub experiment: Option<String>,
}

impl Report {
    pub fn new(accounts: usize, cities: usize, agents_per_city: usize, redis_xadd_per_s: f64, pg_copy_rows_per_s: f64, system: Measured) -> Report {
        Report {
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            accounts,
            cities,
            agents_per_city,
            redis_xadd_per_s,
            pg_copy_rows_per_s,
            system_vs_redis: system.tasks_per_s / redis_xadd_per_s,
            system_vs_copy: system.tasks_per_s / pg_copy_rows_per_s,
            system,
            experiment: None,
        }
    }

    pub fn print(&self) {
        let s = &self.system;
        let line = "-".repeat(78);
        println!("{line}");
        println!("fieldops load test  {}  ({} cores)  {} accounts / {} cities / {} agents per city", self.date, self.cores, self.accounts, self.cities, self.agents_per_city);
        if let Some(e) = &self.experiment {
            println!("EXPERIMENT (not the shipped schema): {e}");
        }
        println!("{line}");
        println!("{:<52} {:>14} {:>10}", "measure", "rate/s", "system is");
        println!("{:<52} {:>14.0} {:>9.1}%", "A  redis-benchmark XADD -P 64 (requests/s)", self.redis_xadd_per_s, 100.0 * self.system_vs_redis);
        println!("{:<52} {:>14.0} {:>9.1}%", "B  PostgreSQL COPY into task-shaped table (rows/s)", self.pg_copy_rows_per_s, 100.0 * self.system_vs_copy);
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
        println!("  {:<60} {:>10.0}", "delivery rate, first -> last delivered (tasks/s)", s.tasks as f64 / (s.last_delivered_s - s.first_delivered_s).max(1e-9));
        println!("latency directive accepted -> task delivered");
        println!("  {:<60} {:>10.0}", "p50 (ms)", s.p50_ms);
        println!("  {:<60} {:>10.0}", "p99 (ms)", s.p99_ms);
        println!("CPU seconds (user+sys)             {:>12} {:>10} {:>8} {:>8}", "this process", "postgres", "redis", "other");
        for (phase, c) in [("POST -> materialise commit", &s.cpu_materialise), ("commit -> last delivered", &s.cpu_relay_deliver)] {
            println!("  {phase:<32} {:>12.2} {:>10.2} {:>8.2} {:>8.2}", c.bench_process, c.postgres, c.redis, c.other);
        }
        println!(
            "  (the completion poll itself ran {} count queries, {:.0} ms in total)",
            s.poll_count_queries, s.poll_count_ms_total
        );
        println!("feedback (GET /directives/{{id}} counts.delivered)");
        match s.counts_lag_s {
            Some(lag) => println!("  {:<60} {:>10}", format!("reached {} after the last delivery, s", s.counts_delivered), format!("{lag:.3}")),
            None => println!("  {:<60} {:>10}", format!("NOT reached within 30 s: {} of {}", s.counts_delivered, s.tasks), "FAIL"),
        }
        println!("{line}");
    }
}
