//! Who burned the CPU during the timed window: user+system seconds from `/proc/<pid>/stat`,
//! grouped as this process (the three services and the poller), PostgreSQL backends, Redis, and
//! everything else on the machine (e.g. someone else's build, which would skew the figures).
//! Processes that start and exit inside the window are missed; USER_HZ is taken as 100.

use std::collections::BTreeMap;

use serde::Serialize;

/// CPU seconds per group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuSeconds {
    pub bench_process: f64,
    pub postgres: f64,
    pub redis: f64,
    pub other: f64,
}

/// Cumulative ticks per pid, with the group each pid belongs to.
pub struct Snapshot(BTreeMap<u32, (&'static str, u64)>);

pub fn snapshot() -> Snapshot {
    let me = std::process::id();
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Snapshot(out) };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ..." - comm may contain spaces; fields after ')' start at field 3
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let group = if pid == me {
            "bench"
        } else if comm == "postgres" {
            "postgres"
        } else if comm.starts_with("redis-server") {
            "redis"
        } else {
            "other"
        };
        out.insert(pid, (group, ticks));
    }
    Snapshot(out)
}

impl Snapshot {
    /// CPU seconds spent between `self` (earlier) and `later`.
    pub fn until(&self, later: &Snapshot) -> CpuSeconds {
        let mut c = CpuSeconds::default();
        for (pid, (group, ticks)) in &later.0 {
            let before = self.0.get(pid).map(|(_, t)| *t).unwrap_or(0);
            let secs = ticks.saturating_sub(before) as f64 / 100.0;
            match *group {
                "bench" => c.bench_process += secs,
                "postgres" => c.postgres += secs,
                "redis" => c.redis += secs,
                _ => c.other += secs,
            }
        }
        c
    }
}
