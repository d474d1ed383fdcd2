//! Seeding through hq-console's real HTTP API (not timed): cities, teams, territories, agents
//! and accounts.
//!
//! Layout: city `c<n>` is a 0.5°x0.5° square at lon 100+n, lat 30, split into four 0.25° square
//! territories `c<n>-t<k>`, each served by its own team `c<n>-team<k>` with
//! `agents_per_city / 4` agents. Account `i` lies in city `i % cities`, territory
//! `(i / cities) % 4`, strictly inside the square (no point on a shared edge), owned by an agent
//! of that territory's team, with `category = 'restaurant'` so the directive targets all of them, and a `gmv_30d`
//! between 0 and 10,000 (see [`gmv_30d`]) for the rule preview.

use std::collections::HashMap;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An authenticated client of hq-console.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub async fn login(port: u16, username: &str, password: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(300)).build()?;
        let base = format!("http://127.0.0.1:{port}/api/v1");
        let resp = http.post(format!("{base}/auth/login")).json(&json!({"username": username, "password": password})).send().await?;
        let body = expect(resp, StatusCode::OK, "login").await?;
        let token = body["token"].as_str().context("login answer has no token")?.to_string();
        Ok(Api { http, base, token })
    }

    /// Sends `body` with `method` to `path`, checks the status, returns the JSON answer.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>, want: StatusCode) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        expect(req.send().await?, want, &format!("{method} {path}")).await
    }
}

async fn expect(resp: reqwest::Response, want: StatusCode, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status == want, "{what}: expected {want}, got {status}: {}", text.chars().take(500).collect::<String>());
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn square(x0: f64, y0: f64, d: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]})
}

/// South-west corner of territory `t` of city `c`.
fn corner(c: usize, t: usize) -> (f64, f64) {
    (100.0 + c as f64 + (t % 2) as f64 * 0.25, 30.0 + (t / 2) as f64 * 0.25)
}

/// A deterministic spread in [0, 1).
fn spread(i: usize, salt: u64) -> f64 {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt).rotate_left(29).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Account `i`'s `gmv_30d` attribute: spread evenly over 0..=10,000, so the rule filter
/// `gmv_30d > 5000` matches about half of the accounts (the fan-out directive matches all).
pub fn gmv_30d(i: usize) -> i64 {
    (spread(i, 3) * 10_000.0).round() as i64
}

/// Creates everything; returns the number of accounts imported.
pub async fn seed(api: &Api, cities: usize, agents_per_city: usize, accounts: usize) -> anyhow::Result<usize> {
    use reqwest::Method;
    let per_team = (agents_per_city / 4).max(1);
    let mut agent_specs = Vec::new();
    for c in 0..cities {
        let city = format!("c{c}");
        let body = json!({"name_zh": format!("城市{c}"), "name_en": format!("City {c}"), "timezone": "Asia/Shanghai"});
        api.call(Method::PUT, &format!("/cities/{city}"), Some(&body), StatusCode::OK).await?;
        let mut features = Vec::new();
        for t in 0..4 {
            let team = format!("{city}-team{t}");
            api.call(Method::POST, "/teams", Some(&json!({"id": team, "city_id": city, "name": format!("Team {t}")})), StatusCode::CREATED)
                .await?;
            let (x0, y0) = corner(c, t);
            features.push(json!({"type": "Feature", "geometry": square(x0, y0, 0.25), "properties": {"id": format!("{city}-t{t}"), "name": format!("T{t}"), "team_id": team}}));
            for k in 0..per_team {
                agent_specs.push((c, t, k));
            }
        }
        api.call(
            Method::PUT,
            &format!("/cities/{city}/territories"),
            Some(&json!({"type": "FeatureCollection", "features": features})),
            StatusCode::OK,
        )
        .await?;
    }
    // agents: argon2 hashing on the server, a few in flight at once
    let created: Vec<((usize, usize), String)> = futures::stream::iter(agent_specs)
        .map(|(c, t, k)| async move {
            let (x0, y0) = corner(c, t);
            let body = json!({
                "username": format!("c{c}-agent-{t}-{k}"), "password": "bench-agent-password", "display_name": format!("Agent {c}.{t}.{k}"),
                "role": "agent", "city_id": format!("c{c}"), "team_id": format!("c{c}-team{t}"),
                "home": {"lat": y0 + 0.125, "lon": x0 + 0.125}
            });
            let out = api.call(Method::POST, "/users", Some(&body), StatusCode::CREATED).await?;
            let id = out["id"].as_str().context("user answer has no id")?.to_string();
            Ok::<_, anyhow::Error>(((c, t), id))
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    let mut agents: HashMap<(usize, usize), Vec<String>> = HashMap::new();
    for (team, id) in created {
        agents.entry(team).or_default().push(id);
    }
    agents.values_mut().for_each(|v| v.sort());
    // accounts in batches of 10,000
    let mut imported = 0;
    for start in (0..accounts).step_by(10_000) {
        let batch: Vec<Value> = (start..accounts.min(start + 10_000))
            .map(|i| {
                let (c, t) = (i % cities, (i / cities) % 4);
                let (x0, y0) = corner(c, t);
                let team = &agents[&(c, t)];
                json!({
                    "id": format!("acc-{c}-{i}"), "name": format!("Restaurant {i}"),
                    "lat": y0 + 0.001 + 0.248 * spread(i, 1), "lon": x0 + 0.001 + 0.248 * spread(i, 2),
                    "owner_id": team[(i / (cities * 4)) % team.len()],
                    "attributes": {"category": "restaurant", "gmv_30d": gmv_30d(i)}
                })
            })
            .collect();
        let out = api.call(Method::POST, "/accounts/import", Some(&Value::Array(batch)), StatusCode::OK).await?;
        let rejected = out["rejected"].as_array().map(Vec::len).unwrap_or(0);
        anyhow::ensure!(rejected == 0, "account import rejected {rejected} rows, e.g. {}", out["rejected"][0]);
        imported += out["imported"].as_u64().context("import answer has no 'imported'")? as usize;
    }
    Ok(imported)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spread_stays_in_unit_interval() {
        assert!((0..10_000).all(|i| (0.0..1.0).contains(&super::spread(i, 7))));
    }
}
