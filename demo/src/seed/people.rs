//! Demo users: per city a manager and agents (homes inside their team's districts), plus HQ
//! users. A 409 means the user exists already; its id then comes from the state file, from
//! `GET /api/v1/users` when the server offers it, or from the replayed idempotent answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::{rngs::StdRng, seq::SliceRandom};
use serde_json::{json, Value};

use super::places::Place;
use super::SeedArgs;
use crate::api::Api;
use crate::cities::City;

pub const DEMO_PASSWORD: &str = "demo-password";

/// A seeded agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub team_id: String,
}

/// Username → user id, persisted between runs.
pub struct Directory {
    path: PathBuf,
    ids: BTreeMap<String, String>,
    listed: bool,
}

impl Directory {
    pub fn open(path: &Path) -> Result<Self> {
        let ids = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?,
            Err(_) => BTreeMap::new(),
        };
        Ok(Self { path: path.to_path_buf(), ids, listed: false })
    }

    pub fn save(&self) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&self.path, serde_json::to_vec_pretty(&self.ids)?)?;
        Ok(())
    }

    /// Create the user, or find the id of the existing one; an existing user whose id is
    /// not `needed` is fine without it.
    pub async fn ensure(&mut self, api: &Api, user: Value, needed: bool) -> Result<Option<String>> {
        let username = user["username"].as_str().unwrap_or_default().to_string();
        let r = api.post("/api/v1/users", &user, &format!("seed-user-{username}")).await?;
        if r.status.is_success() {
            let id = id_of(&r.body).ok_or_else(|| anyhow!("user {username}: answer has no id"))?;
            self.ids.insert(username, id.clone());
            return Ok(Some(id));
        }
        if r.status.as_u16() != 409 {
            bail!("user {username}: {}", r.describe());
        }
        if let Some(id) = self.ids.get(&username) {
            return Ok(Some(id.clone()));
        }
        if !needed {
            return Ok(None);
        }
        if !self.listed {
            self.listed = true;
            self.list_all(api).await;
        }
        self.ids.get(&username).cloned().map(Some).ok_or_else(|| {
            anyhow!(
                "user {username} exists but its id is unknown (no GET /api/v1/users and no {}); \
                 reset the database or restore that file",
                self.path.display()
            )
        })
    }

    /// Page through `GET /api/v1/users` if the server has it; silently nothing otherwise.
    async fn list_all(&mut self, api: &Api) {
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/users?limit=500&cursor={c}"),
                None => "/api/v1/users?limit=500".to_string(),
            };
            let Ok(r) = api.get(&path).await else { return };
            if !r.status.is_success() {
                return;
            }
            for u in r.body["items"].as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (u["username"].as_str(), id_of(u)) {
                    self.ids.insert(name.to_string(), id);
                }
            }
            cursor = r.body["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return;
            }
        }
    }
}

fn id_of(v: &Value) -> Option<String> {
    match &v["id"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The city's manager and agents; agent `i` joins team `i % teams`.
pub async fn seed_city_people(
    api: &Api,
    dir: &mut Directory,
    city: &City,
    place: &Place,
    args: &SeedArgs,
    rng: &mut StdRng,
) -> Result<Vec<Agent>> {
    dir.ensure(
        api,
        json!({
            "username": format!("{}-manager", city.short), "password": DEMO_PASSWORD,
            "display_name": format!("{} City Manager", city.name_en), "role": "city_manager", "city_id": city.id,
        }),
        false,
    )
    .await?;
    let mut agents = Vec::new();
    for i in 0..args.agents_per_city {
        let team_id = place.team_ids[i % place.team_ids.len()].clone();
        let own: Vec<_> = place.districts.iter().filter(|(_, t)| *t == team_id).collect();
        let pool = if own.is_empty() { place.districts.iter().collect() } else { own };
        let (district, _) = pool.choose(rng).ok_or_else(|| anyhow!("{} has no districts", city.id))?;
        let (lon, lat) = district.random_point(rng);
        let username = format!("{}-agent-{:02}", city.short, i + 1);
        let id = dir
            .ensure(
                api,
                json!({
                    "username": username, "password": DEMO_PASSWORD,
                    "display_name": format!("{} Agent {:02}", city.name_en, i + 1), "role": "agent",
                    "city_id": city.id, "team_id": team_id, "home": {"lat": lat, "lon": lon},
                }),
                true,
            )
            .await?
            .unwrap_or_default();
        agents.push(Agent { id, team_id });
    }
    eprintln!("seed:   1 manager, {} agents", agents.len());
    Ok(agents)
}

/// HQ users without a city: `strategist` and `coo`.
pub async fn seed_hq_people(api: &Api, dir: &mut Directory) -> Result<()> {
    for (username, role, name) in [("strategist", "hq_strategist", "HQ Strategist"), ("coo", "coo", "Chief Operating Officer")] {
        let user = json!({"username": username, "password": DEMO_PASSWORD, "display_name": name, "role": role});
        dir.ensure(api, user, false).await?;
    }
    eprintln!("seed: HQ users strategist, coo");
    Ok(())
}
