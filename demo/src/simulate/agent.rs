//! One simulated agent: log in, then take one step at a time on its open tasks, with think
//! time in between, until told to stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use super::{answers, SimArgs, Stats};
use crate::api::{Api, Resp};

const OPEN: &[&str] = &["delivered", "queued", "accepted", "checked_in"];
const INTEL: &[(&str, &str)] = &[
    ("Competitor A offering subsidy", "competitor_subsidy"),
    ("Competitor A offering subsidy to new merchants", "competitor_subsidy"),
    ("Competitor B handing out coupons", "competitor_coupon"),
    ("Street closed for construction", "access_blocked"),
];

pub struct Ctx {
    pub args: SimArgs,
    pub stats: Arc<Stats>,
    pub gate: Arc<Semaphore>,
    pub stop: watch::Receiver<bool>,
    pub started: Instant,
}

impl Ctx {
    /// Sleep, returning false as soon as a stop is requested.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !*self.stop.borrow(),
            _ = self.stop.changed() => false,
        }
    }

    fn error(&self, username: &str, what: &str) {
        let n = self.stats.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 20 || n.is_multiple_of(100) {
            eprintln!("simulate: {username}: {what} (error #{n})");
        }
    }
}

pub async fn run(mut ctx: Ctx, username: String) {
    let mut rng = StdRng::from_entropy();
    let api = loop {
        let attempt = match Api::new(&ctx.args.agent_api) {
            Ok(api) => api.login(&username, &ctx.args.password).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(api) => break api,
            Err(e) => ctx.error(&username, &format!("{e:#}")),
        }
        if !ctx.pause(Duration::from_secs(10)).await {
            return;
        }
    };
    let my_id = api.user["id"].clone();
    let mut agent = Agent { api, username, my_id, tasks: Vec::new(), pos: None, idle: 0 };
    loop {
        let think = Duration::from_millis(rng.gen_range(200..=2000) + agent.idle * 1000);
        if !ctx.pause(think).await {
            return;
        }
        let Ok(_permit) = ctx.gate.clone().acquire_owned().await else {
            return;
        };
        if agent.tasks.is_empty() {
            agent.refresh(&ctx).await;
            agent.idle = if agent.tasks.is_empty() { (agent.idle + 1).min(8) } else { 0 };
        }
        if rng.gen_bool(ctx.args.intel_rate.clamp(0.0, 1.0)) {
            agent.intel(&ctx, &mut rng).await;
        }
        if let Some(i) = agent.next_task(&mut rng) {
            agent.step(&ctx, i, &mut rng).await;
        }
    }
}

struct Agent {
    api: Api,
    username: String,
    my_id: Value,
    tasks: Vec<Value>,
    /// Last known position (the last visited account), for intel reports.
    pos: Option<(f64, f64)>,
    idle: u64,
}

impl Agent {
    async fn refresh(&mut self, ctx: &Ctx) {
        for status in OPEN {
            match self.api.get(&format!("/api/v1/tasks?status={status}&limit=50")).await {
                Ok(r) if r.status.is_success() => {
                    self.tasks.extend(r.body["items"].as_array().cloned().unwrap_or_default());
                }
                Ok(r) => ctx.error(&self.username, &format!("list {status} tasks: {}", r.describe())),
                Err(e) => ctx.error(&self.username, &format!("list {status} tasks: {e:#}")),
            }
        }
        let mut seen = std::collections::HashSet::new();
        self.tasks.retain(|t| seen.insert(t["id"].to_string()));
    }

    /// The task to work on: the one furthest along (so a started visit is finished before
    /// the next begins), ties broken at random.
    fn next_task(&self, rng: &mut StdRng) -> Option<usize> {
        let rank = |t: &Value| match t["status"].as_str() {
            Some("checked_in") => 3,
            Some("accepted") => 2,
            _ if t["assignee_id"].is_null() => 0,
            _ => 1,
        };
        let best = self.tasks.iter().map(rank).max()?;
        let candidates: Vec<usize> = (0..self.tasks.len()).filter(|&i| rank(&self.tasks[i]) == best).collect();
        Some(candidates[rng.gen_range(0..candidates.len())])
    }

    /// Move task `i` one transition forward; drop it when done or refused.
    async fn step(&mut self, ctx: &Ctx, i: usize, rng: &mut StdRng) {
        let task = self.tasks[i].clone();
        let id = task["id"].as_str().unwrap_or_default().to_string();
        let account = &task["account"];
        let at = account["lon"].as_f64().zip(account["lat"].as_f64());
        let (every, s) = (ctx.args.report_every, &ctx.stats);
        let status = task["status"].as_str().unwrap_or("");
        let result = match status {
            "queued" | "delivered" if task["assignee_id"].is_null() => self.act(&id, "claim", json!({})).await.map(|r| (r, &s.claimed)),
            "queued" | "delivered" if rng.gen_bool(ctx.args.reject_rate.clamp(0.0, 1.0)) => {
                self.act(&id, "reject", json!({"reason": "closed"})).await.map(|r| (r, &s.rejected))
            }
            "queued" | "delivered" => self.act(&id, "accept", json!({})).await.map(|r| (r, &s.accepted)),
            "accepted" if task["require_checkin"].as_bool().unwrap_or(false) && at.is_some() => {
                let (lon, lat) = at.unwrap_or_default();
                let body = json!({"lat": lat, "lon": lon, "accuracy_m": rng.gen_range(5..30)});
                self.act(&id, "checkin", body).await.map(|r| (r, &s.checked_in))
            }
            "accepted" | "checked_in" => match self.completion(ctx, &task, at, rng).await {
                Some(body) => self.act(&id, "complete", body).await.map(|r| (r, &s.completed)),
                None => return,
            },
            _ => {
                self.tasks.swap_remove(i);
                return;
            }
        };
        match result {
            Ok((r, counter)) if r.status.is_success() => {
                s.bump(counter, every, ctx.started);
                if at.is_some() {
                    self.pos = at;
                }
                let next = match r.body["status"].as_str() {
                    Some(_) => r.body.clone(),
                    None => advance(&task, counter, s, &self.my_id),
                };
                match next["status"].as_str() {
                    Some("accepted" | "checked_in" | "queued" | "delivered") => self.tasks[i] = next,
                    _ => {
                        self.tasks.swap_remove(i);
                    }
                }
            }
            Ok((r, _)) => {
                if r.status.as_u16() != 409 && r.status.as_u16() != 404 {
                    ctx.error(&self.username, &format!("task {id} ({status}): {}", r.describe()));
                }
                self.tasks.swap_remove(i);
            }
            Err(e) => {
                ctx.error(&self.username, &format!("task {id}: {e:#}"));
                self.tasks.swap_remove(i);
            }
        }
    }

    async fn act(&self, id: &str, action: &str, body: Value) -> anyhow::Result<Resp> {
        let key = format!("sim-{}-{id}-{action}", self.username);
        self.api.post(&format!("/api/v1/tasks/{id}/{action}"), &body, &key).await
    }

    /// The completion body, uploading photos the form requires.
    async fn completion(&self, ctx: &Ctx, task: &Value, at: Option<(f64, f64)>, rng: &mut StdRng) -> Option<Value> {
        let mut photo_ids = Vec::new();
        for key in answers::required_photos(&task["form"]) {
            let idem = format!("sim-{}-{}-photo-{key}", self.username, task["id"].as_str().unwrap_or(""));
            match self.api.post_bytes("/api/v1/photos", answers::TINY_PNG, "image/png", &idem).await {
                Ok(r) if r.status.is_success() => photo_ids.push(r.body["id"].as_str().unwrap_or_default().to_string()),
                Ok(r) => ctx.error(&self.username, &format!("photo upload: {}", r.describe())),
                Err(e) => ctx.error(&self.username, &format!("photo upload: {e:#}")),
            }
        }
        let answers = answers::answers(&task["form"], &photo_ids, at, rng);
        let mut body = json!({"answers": answers, "note": "Visited; report from the field simulator."});
        if !photo_ids.is_empty() {
            body["photo_ids"] = json!(photo_ids);
        }
        if let Some((lon, lat)) = at {
            body["location"] = json!({"lat": lat, "lon": lon});
        }
        Some(body)
    }

    async fn intel(&self, ctx: &Ctx, rng: &mut StdRng) {
        let Some((lon, lat)) = self.pos else { return };
        let (text, tag) = INTEL[rng.gen_range(0..INTEL.len())];
        let jitter = |v: f64, rng: &mut StdRng| v + rng.gen_range(-0.0005..0.0005);
        let body = json!({"kind": "intel", "text": text, "tags": [tag],
            "location": {"lat": jitter(lat, rng), "lon": jitter(lon, rng)}});
        let key = format!("sim-{}-report-{:016x}", self.username, rng.gen::<u64>());
        match self.api.post("/api/v1/reports", &body, &key).await {
            Ok(r) if r.status.is_success() => ctx.stats.bump(&ctx.stats.reports, ctx.args.report_every, ctx.started),
            Ok(r) => ctx.error(&self.username, &format!("intel report: {}", r.describe())),
            Err(e) => ctx.error(&self.username, &format!("intel report: {e:#}")),
        }
    }
}

/// The task after a successful action (known by the counter it bumped) whose answer did not
/// carry the new status.
fn advance(task: &Value, counter: &AtomicU64, s: &Stats, me: &Value) -> Value {
    let mut t = task.clone();
    if std::ptr::eq(counter, &s.claimed) {
        t["assignee_id"] = me.clone();
    } else if std::ptr::eq(counter, &s.accepted) {
        t["status"] = json!("accepted");
    } else if std::ptr::eq(counter, &s.checked_in) {
        t["status"] = json!("checked_in");
    } else {
        t["status"] = json!("done");
    }
    t
}
