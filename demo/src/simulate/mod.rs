//! `simulate`: demo field agents on the city-agent API, until Ctrl-C.
//!
//! Each agent logs in, then loops: list its open tasks, work through them (claim pool tasks,
//! accept or reject 10% as closed, check in at the account, complete with answers valid for the
//! form), now and then send an intel report, and think 0.2–2 s between actions. A semaphore
//! bounds how many agents talk to the server at once.
//!
//! Besides, every 20–40 s a burst (`burst.rs`): three agents of one city report a competitor
//! subsidy from the same district within seconds, which makes the report-triggered rule fire.

mod agent;
mod answers;
mod burst;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use tokio::sync::{watch, Semaphore};

use crate::cities;

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// city-agent-api base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub agent_api: String,
    /// `all` (every demo agent of the selected cities) or comma-separated usernames.
    #[arg(long, default_value = "all")]
    pub users: String,
    /// Cities whose agents `--users all` means.
    #[arg(long, default_value = "all")]
    pub cities: String,
    #[arg(long, default_value_t = 20)]
    pub agents_per_city: usize,
    #[arg(long, default_value = "demo-password")]
    pub password: String,
    /// Agents talking to the server at the same time.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Print a progress line every N actions.
    #[arg(long, default_value_t = 50)]
    pub report_every: u64,
    /// Share of tasks rejected as closed.
    #[arg(long, default_value_t = 0.10)]
    pub reject_rate: f64,
    /// Chance per agent loop of sending an intel report.
    #[arg(long, default_value_t = 0.05)]
    pub intel_rate: f64,
    /// Seconds before the first competitor-subsidy burst.
    #[arg(long, default_value_t = 20)]
    pub burst_first: u64,
    /// Least seconds between bursts.
    #[arg(long, default_value_t = 20)]
    pub burst_min: u64,
    /// Most seconds between bursts (0: no bursts).
    #[arg(long, default_value_t = 40)]
    pub burst_max: u64,
    /// Agents (and reports) per burst: the rule's threshold.
    #[arg(long, default_value_t = 3)]
    pub burst_size: usize,
}

/// Counters shared by all agents.
#[derive(Default)]
pub struct Stats {
    pub claimed: AtomicU64,
    pub accepted: AtomicU64,
    pub checked_in: AtomicU64,
    pub completed: AtomicU64,
    pub rejected: AtomicU64,
    pub reports: AtomicU64,
    pub errors: AtomicU64,
    actions: AtomicU64,
}

impl Stats {
    /// Count one action in `counter`; print a line every `every` actions.
    pub fn bump(&self, counter: &AtomicU64, every: u64, started: Instant) {
        counter.fetch_add(1, Ordering::Relaxed);
        let n = self.actions.fetch_add(1, Ordering::Relaxed) + 1;
        if every > 0 && n.is_multiple_of(every) {
            println!("{}", self.line(started));
        }
    }

    pub fn line(&self, started: Instant) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "simulate: {:>6.0}s  actions {}  claimed {}  accepted {}  checked_in {}  completed {}  rejected {}  reports {}  errors {}",
            started.elapsed().as_secs_f64(),
            g(&self.actions),
            g(&self.claimed),
            g(&self.accepted),
            g(&self.checked_in),
            g(&self.completed),
            g(&self.rejected),
            g(&self.reports),
            g(&self.errors)
        )
    }
}

fn usernames(args: &SimArgs) -> Result<Vec<String>> {
    if args.users.trim() != "all" {
        return Ok(args.users.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect());
    }
    Ok(cities::select(&args.cities)?
        .iter()
        .flat_map(|c| (1..=args.agents_per_city).map(move |i| format!("{}-agent-{i:02}", c.short)))
        .collect())
}

pub async fn run(args: SimArgs) -> Result<()> {
    let users = usernames(&args)?;
    let started = Instant::now();
    let stats = Arc::new(Stats::default());
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    println!("simulate: {} agents against {} (Ctrl-C to stop)", users.len(), args.agent_api);

    let mut handles = Vec::new();
    for username in users {
        let ctx = agent::Ctx { args: args.clone(), stats: stats.clone(), gate: gate.clone(), stop: stop_rx.clone(), started };
        handles.push(tokio::spawn(agent::run(ctx, username)));
    }
    handles.push(tokio::spawn(burst::run(burst::Burst {
        args: args.clone(),
        stats: stats.clone(),
        cities: cities::select(&args.cities)?,
        stop: stop_rx.clone(),
    })));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm() => {}
    }
    println!("simulate: stopping…");
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    println!("{}", stats.line(started));
    Ok(())
}

#[cfg(unix)]
async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn sigterm() {
    std::future::pending().await
}
