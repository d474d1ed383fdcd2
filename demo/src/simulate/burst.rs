//! Competitor-subsidy bursts: every `--burst-min`..`--burst-max` seconds, three agents of one
//! city (`--burst-size`) file `intel` reports tagged `competitor_subsidy` from the same district
//! within a few seconds, so the report-triggered rule ("Competitor subsidy: counter-visit",
//! threshold 3 per territory in 24 h) fires a directive for that district during the demo.
//!
//! The district comes from a task of one of the chosen agents: its account's location (and its
//! `territory_id`). The other reports are a few metres from it, well inside the district. A
//! district is used once per run, and not at all when the agent already has a counter-visit task
//! there: the rule does not fire for a territory again within its window (24 h).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{SimArgs, Stats};
use crate::api::Api;
use crate::cities::City;

/// How the counter-visit rule's task titles begin (`seed/rules.rs`).
const COUNTER_TITLE: &str = "Counter-visit ";

const TEXTS: &[&str] = &[
    "Competitor A offering a cash subsidy to merchants on this street",
    "Competitor A cutting commission to 8% for three months here",
    "Competitor B sales team signing merchants with free delivery",
    "Merchants here say Competitor A pays them to switch",
];

pub struct Burst {
    pub args: SimArgs,
    pub stats: Arc<Stats>,
    pub cities: Vec<City>,
    pub stop: watch::Receiver<bool>,
}

impl Burst {
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !*self.stop.borrow(),
            _ = self.stop.changed() => false,
        }
    }
}

pub async fn run(mut b: Burst) {
    let (lo, hi) = (b.args.burst_min, b.args.burst_max.max(b.args.burst_min));
    if hi == 0 || b.cities.is_empty() || b.args.burst_size == 0 {
        return;
    }
    let mut rng = StdRng::from_entropy();
    let mut logins: HashMap<String, Api> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut n = 0u64;
    // the first burst soon after start, so the loop closes within the first minute
    let mut wait = Duration::from_secs(b.args.burst_first);
    loop {
        if !b.pause(wait).await {
            return;
        }
        wait = Duration::from_secs(rng.gen_range(lo.max(1)..=hi.max(1)));
        let city = b.cities[rng.gen_range(0..b.cities.len())];
        match burst(&b.args, &city, &mut logins, &mut used, &mut rng).await {
            Ok(Some((filed, line))) => {
                b.stats.reports.fetch_add(filed, Ordering::Relaxed);
                n += 1;
                println!("simulate: burst #{n}: {line}");
            }
            Ok(None) => {
                eprintln!("simulate: burst in {}: no district found (agents without tasks); trying another city soon", city.id);
                wait = Duration::from_secs(3);
            }
            Err(e) => {
                eprintln!("simulate: burst in {}: {e:#}", city.id);
                wait = Duration::from_secs(5);
            }
        }
    }
}

async fn login<'a>(args: &SimArgs, logins: &'a mut HashMap<String, Api>, username: &str) -> anyhow::Result<&'a Api> {
    if !logins.contains_key(username) {
        let api = Api::new(&args.agent_api)?.login(username, &args.password).await?;
        logins.insert(username.to_string(), api);
    }
    Ok(&logins[username])
}

/// One burst in `city`: reports filed and a line to log; `None` when no district was found.
async fn burst(
    args: &SimArgs,
    city: &City,
    logins: &mut HashMap<String, Api>,
    used: &mut HashSet<String>,
    rng: &mut StdRng,
) -> anyhow::Result<Option<(u64, String)>> {
    let mut agents: Vec<String> = (1..=args.agents_per_city).map(|i| format!("{}-agent-{i:02}", city.short)).collect();
    agents.shuffle(rng);
    let size = args.burst_size.min(agents.len());
    // a district: the account of a task of one of the agents, not used yet in this run
    let mut spot: Option<(f64, f64, String)> = None;
    for who in agents.iter().take(6) {
        let api = login(args, logins, who).await?;
        let r = api.get("/api/v1/tasks?limit=100").await?;
        if r.status.as_u16() == 401 {
            logins.remove(who.as_str());
            continue;
        }
        let mut tasks = r.body["items"].as_array().cloned().unwrap_or_default();
        // a district with a counter-visit task already fired (maybe in an earlier run, and the
        // rule would not fire there again within its window): leave it out
        for t in &tasks {
            let counter = !t["rule_id"].is_null() && t["title"].as_str().is_some_and(|x| x.starts_with(COUNTER_TITLE));
            if let (true, Some(terr)) = (counter, t["territory_id"].as_str()) {
                used.insert(terr.to_string());
            }
        }
        tasks.shuffle(rng);
        spot = tasks.iter().find_map(|t| {
            let a = &t["account"];
            let terr = t["territory_id"].as_str()?;
            (!used.contains(terr)).then_some(())?;
            Some((a["lat"].as_f64()?, a["lon"].as_f64()?, terr.to_string()))
        });
        if spot.is_some() {
            break;
        }
    }
    let Some((lat, lon, territory)) = spot else {
        return Ok(None);
    };
    used.insert(territory.clone());
    let mut filed = Vec::new();
    let mut places = HashSet::new();
    for (k, who) in agents.iter().take(size).enumerate() {
        if k > 0 {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(300..=1500))).await;
        }
        // within ~10 m of the account: the same district
        let at = json!({"lat": lat + rng.gen_range(-0.0001..0.0001), "lon": lon + rng.gen_range(-0.0001..0.0001)});
        let body = json!({"kind": "intel", "text": TEXTS[rng.gen_range(0..TEXTS.len())],
                          "tags": ["competitor_subsidy"], "location": at});
        let key = format!("sim-burst-{who}-{:016x}", rng.gen::<u64>());
        let api = login(args, logins, who).await?;
        let r = api.post("/api/v1/reports", &body, &key).await?;
        if r.status.is_success() {
            places.insert(plain(&r.body["territory_id"]));
            filed.push(who.clone());
        } else {
            eprintln!("simulate: burst report by {who}: {}", r.describe());
        }
    }
    Ok(Some((
        filed.len() as u64,
        format!(
            "{} intel reports tagged competitor_subsidy in {} district {territory} by {} (report territories: {})",
            filed.len(),
            city.id,
            filed.join(", "),
            places.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
