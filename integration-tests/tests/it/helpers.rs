//! The system under test and a small world to test it on.

use std::time::Duration;

use fieldops_core::Settings;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "password-123";

pub struct Service {
    pub url: String,
    pub stop: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }
}

pub struct System {
    pub settings: Settings,
    pub db: PgPool,
    pub hq: Service,
    pub field: Service,
    pub dispatcher: Option<Service>,
    pub http: reqwest::Client,
    pub admin: String,
}

pub async fn settings() -> Settings {
    let mut s = fieldops_core::testing::settings().await;
    s.auth.bootstrap_admin_username = ADMIN.into();
    s.auth.bootstrap_admin_password = SecretString::from(ADMIN_PASSWORD);
    // small stream messages, so a directive spans several entries per city
    s.dispatch.batch_size = 5;
    s
}

pub async fn start_field(settings: &Settings, delivery: bool) -> Service {
    let (port, stop, handle) =
        city_agent_api::build_with(settings.clone(), city_agent_api::Options { delivery }).await.expect("city-agent-api starts").spawn();
    Service { url: format!("http://127.0.0.1:{port}"), stop, handle }
}

pub async fn start_dispatcher(settings: &Settings) -> Service {
    let (port, stop, handle) = dispatcher::build(settings.clone()).await.expect("dispatcher starts").spawn();
    Service { url: format!("http://127.0.0.1:{port}"), stop, handle }
}

impl System {
    /// All three services, sharing one fresh database and Redis prefix.
    pub async fn start() -> System {
        Self::start_with(true, true).await
    }

    pub async fn start_with(dispatcher: bool, delivery: bool) -> System {
        let settings = settings().await;
        let (port, stop, handle) = hq_console::build(settings.clone()).await.expect("hq-console starts").spawn();
        let hq = Service { url: format!("http://127.0.0.1:{port}"), stop, handle };
        let field = start_field(&settings, delivery).await;
        let dispatcher = if dispatcher { Some(start_dispatcher(&settings).await) } else { None };
        let db = fieldops_core::platform::db::connect(&settings.database).await.unwrap();
        let http = reqwest::Client::new();
        let admin = login(&http, &hq.url, ADMIN, ADMIN_PASSWORD).await;
        System { settings, db, hq, field, dispatcher, http, admin }
    }

    pub async fn hq(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.http, method, &format!("{}{path}", self.hq.url), token, body, None).await
    }

    pub async fn field(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.http, method, &format!("{}{path}", self.field.url), token, body, None).await
    }

    pub async fn field_idem(&self, path: &str, token: &str, body: Value, key: &str) -> (u16, Value) {
        call(&self.http, reqwest::Method::POST, &format!("{}{path}", self.field.url), token, Some(body), Some(key)).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.db).await.unwrap()
    }

    /// Waits (polling the database, the system of record) until `sql` returns `want`.
    pub async fn wait_count(&self, sql: &str, want: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let n = self.count(sql).await;
            if n == want {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for `{sql}` = {want}, last {n}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the directive's counts (from the feedback consumer) match.
    pub async fn wait_counts(&self, directive: &str, want: &[(&str, i64)]) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, d) = self.hq(reqwest::Method::GET, &format!("/api/v1/directives/{directive}"), &self.admin, None).await;
            if want.iter().all(|(k, n)| d["counts"][k].as_i64() == Some(*n)) {
                return d;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for counts {want:?}; have {}", d["counts"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) {
        self.hq.stop().await;
        self.field.stop().await;
        if let Some(d) = self.dispatcher {
            d.stop().await;
        }
    }
}

pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        &format!("{base}/api/v1/auth/login"),
        "",
        Some(json!({"username": user, "password": password})),
        None,
    )
    .await;
    assert_eq!(status, 200, "login {user}: {body}");
    body["token"].as_str().unwrap().to_string()
}

/// A square polygon [lon0, lat0] .. [lon1, lat1].
pub fn square(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]})
}

/// Two cities, each with two territories (west and east halves), one team per territory,
/// two agents per team, a manager per city, HQ users.
pub struct World {
    pub agents: Vec<Agent>,
    pub managers: Vec<(String, String)>,
    pub strategist: String,
    pub coo: String,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub username: String,
    pub city: String,
    pub team: String,
    pub token: String,
}

/// City id and the lon/lat of its south-west corner (each city is 1° x 1°).
pub const CITIES: [(&str, f64, f64); 2] = [("shanghai", 121.0, 31.0), ("hangzhou", 119.5, 29.8)];

pub async fn world(sys: &System) -> World {
    use reqwest::Method;
    let admin = sys.admin.clone();
    let mut agents = Vec::new();
    let mut managers = Vec::new();
    for (city, lon, lat) in CITIES {
        let (s, b) = sys
            .hq(
                Method::PUT,
                &format!("/api/v1/cities/{city}"),
                &admin,
                Some(json!({"name_zh": city, "name_en": city, "timezone": "Asia/Shanghai"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let mut features = Vec::new();
        for (half, lon0) in [("west", lon), ("east", lon + 0.5)] {
            let team = format!("{city}-{half}");
            let (s, b) = sys.hq(Method::POST, "/api/v1/teams", &admin, Some(json!({"id": team, "city_id": city, "name": team}))).await;
            assert_eq!(s, 201, "{b}");
            features.push(json!({"type": "Feature", "geometry": square(lon0, lat, lon0 + 0.5, lat + 1.0), "properties": {"id": format!("{city}-{half}-t"), "name": half, "team_id": team}}));
            for n in 1..=2 {
                let username = format!("{city}-{half}-agent{n}");
                let home = json!({"lat": lat + 0.1 * n as f64, "lon": lon0 + 0.1 * n as f64});
                let (s, b) = sys.hq(Method::POST, "/api/v1/users", &admin, Some(json!({"username": username, "password": PASSWORD, "display_name": username, "role": "agent", "city_id": city, "team_id": team, "home": home}))).await;
                assert_eq!(s, 201, "{b}");
                let token = login(&sys.http, &sys.field.url, &username, PASSWORD).await;
                agents.push(Agent { id: b["id"].as_str().unwrap().into(), username, city: city.into(), team: team.clone(), token });
            }
        }
        let (s, b) = sys
            .hq(
                Method::PUT,
                &format!("/api/v1/cities/{city}/territories"),
                &admin,
                Some(json!({"type": "FeatureCollection", "features": features})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let manager = format!("{city}-manager");
        let (s, b) = sys
            .hq(
                Method::POST,
                "/api/v1/users",
                &admin,
                Some(json!({"username": manager, "password": PASSWORD, "display_name": manager, "role": "city_manager", "city_id": city})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        managers.push((city.to_string(), login(&sys.http, &sys.field.url, &manager, PASSWORD).await));
    }
    let hq_user = |role: &'static str| {
        let sys = &sys;
        let admin = admin.clone();
        async move {
            let (s, b) = sys
                .hq(
                    Method::POST,
                    "/api/v1/users",
                    &admin,
                    Some(json!({"username": role, "password": PASSWORD, "display_name": role, "role": role})),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            login(&sys.http, &sys.hq.url, role, PASSWORD).await
        }
    };
    let strategist = hq_user("hq_strategist").await;
    let coo = hq_user("coo").await;
    World { agents, managers, strategist, coo }
}

impl World {
    pub fn agent(&self, username: &str) -> &Agent {
        self.agents.iter().find(|a| a.username == username).unwrap()
    }
    pub fn manager(&self, city: &str) -> &str {
        &self.managers.iter().find(|(c, _)| c == city).unwrap().1
    }
}

/// Imports `n` accounts per team at distinct points of the team's territory, owned round-robin
/// by the team's agents; `category` alternates restaurant / cafe.
pub async fn accounts(sys: &System, world: &World, per_team: usize) -> Vec<Value> {
    let mut items = Vec::new();
    for (city, lon, lat) in CITIES {
        for (half, lon0) in [("west", lon), ("east", lon + 0.5)] {
            let team = format!("{city}-{half}");
            let owners: Vec<&Agent> = world.agents.iter().filter(|a| a.team == team).collect();
            for i in 0..per_team {
                let owner = owners[i % owners.len()];
                items.push(json!({
                    "id": format!("acc-{team}-{i}"),
                    "name": format!("Shop {i} of {team}"),
                    "lat": lat + 0.05 + 0.9 * (i as f64 + 0.5) / per_team as f64,
                    "lon": lon0 + 0.25,
                    "owner_id": owner.id,
                    "attributes": {"category": if i % 2 == 0 { "restaurant" } else { "cafe" }, "gmv_30d": 1000 * i}
                }));
            }
        }
    }
    let (s, b) = sys.hq(reqwest::Method::POST, "/api/v1/accounts/import", &sys.admin, Some(Value::Array(items.clone()))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["rejected"], json!([]), "{b}");
    items
}

pub fn directive(accounts: Option<&str>, cities: &[&str]) -> Value {
    json!({
        "name": "Visit restaurants",
        "target": {"cities": cities, "territories": [], "area": null, "accounts": accounts},
        "task": {
            "title": "Visit {{account.name}}",
            "instructions": "Offer the Q4 package.",
            "priority": "high",
            "due_in": "48h",
            "require_checkin": true,
            "form": [
                {"key": "signed", "label": "Signed?", "type": "bool", "required": true},
                {"key": "competitor", "label": "Competitor", "type": "choice", "options": ["none", "A", "B"]}
            ]
        },
        "assignment": "owner"
    })
}
