//! Bad input answers a structured 4xx naming the field, and writes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn raw(sys: &System, method: Method, url: String, token: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    let resp = sys.http.request(method, url).bearer_auth(token).header("content-type", content_type).body(body).send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// Row counts of every table a bad request could touch.
async fn footprint(sys: &System) -> Vec<i64> {
    let mut out = Vec::new();
    for t in ["city", "territory", "team", "app_user", "account", "directive", "task", "report", "photo", "outbox", "idempotency_key"] {
        out.push(sys.count(&format!("select count(*) from {t}")).await);
    }
    out
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, want_field: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    if let Some(f) = want_field {
        assert_eq!(body["error"]["field"], f, "{body}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_structured_4xx_and_writes_nothing() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 2).await;
    let before = footprint(&sys).await;
    let admin = sys.admin.clone();
    let hq = |p: &str| format!("{}{p}", sys.hq.url);

    // malformed JSON
    let (s, b) = raw(&sys, Method::POST, hq("/api/v1/directives"), &admin, b"{\"name\": ".to_vec(), "application/json").await;
    assert_error(s, &b, 400, "malformed_json", None);
    // unknown field, wrong type, missing field
    let mut d = directive(None, &[]);
    d["target"]["citys"] = json!(["shanghai"]);
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d)).await;
    assert_error(s, &b, 422, "invalid_field", Some("target.citys"));
    let mut d = directive(None, &[]);
    d["task"]["require_checkin"] = json!("yes");
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d)).await;
    assert_error(s, &b, 422, "invalid_field", Some("task.require_checkin"));
    let mut d = directive(None, &[]);
    d["task"].as_object_mut().unwrap().remove("due_in");
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d)).await;
    assert_error(s, &b, 422, "invalid_field", Some("task"));
    // invalid values
    let mut d = directive(None, &["atlantis"]);
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d.clone())).await;
    assert_error(s, &b, 422, "unknown_city", Some("target.cities[0]"));
    d["target"]["cities"] = json!([]);
    d["task"]["due_in"] = json!("soon");
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d.clone())).await;
    assert_error(s, &b, 422, "invalid_field", Some("task.due_in"));
    d["task"]["due_in"] = json!("48h");
    d["target"]["accounts"] = json!("gmv_30d >> 5");
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d.clone())).await;
    assert_error(s, &b, 422, "invalid_expression", Some("target.accounts"));
    assert_eq!(b["error"]["position"], 9);
    d["target"]["accounts"] = Value::Null;
    d["task"]["title"] = json!("Visit {{account.owner}}");
    let (s, b) = sys.hq(Method::POST, "/api/v1/directives", &admin, Some(d.clone())).await;
    assert_error(s, &b, 422, "unknown_placeholder", Some("task.title"));

    // invalid GeoJSON: unclosed ring, self-intersection, out of range, not a polygon
    let city = "/api/v1/cities/shanghai/territories";
    let fc = |geometry: Value| json!({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": geometry, "properties": {"id": "t1", "name": "x"}}]});
    let unclosed = json!({"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.5, 31.0], [121.5, 31.5], [121.0, 31.5]]]});
    let bowtie = json!({"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.5, 31.5], [121.5, 31.0], [121.0, 31.5], [121.0, 31.0]]]});
    let far = square(121.0, 31.0, 181.0, 31.5);
    for (g, code) in [(unclosed, "invalid_geometry"), (bowtie, "invalid_geometry"), (far, "out_of_range")] {
        let (s, b) = sys.hq(Method::PUT, city, &admin, Some(fc(g))).await;
        assert_error(s, &b, 422, code, Some("features[0].geometry"));
    }
    let (s, b) = sys.hq(Method::PUT, city, &admin, Some(json!({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.0, 31.0]}, "properties": {"id": "t1"}}]}))).await;
    assert_error(s, &b, 422, "invalid_geometry", Some("features[0].geometry"));
    let (s, b) = sys.hq(Method::PUT, "/api/v1/cities/atlantis/territories", &admin, Some(fc(square(1.0, 1.0, 2.0, 2.0)))).await;
    assert_error(s, &b, 404, "not_found", None);
    let (s, b) = sys
        .hq(Method::PUT, "/api/v1/cities/nowhere", &admin, Some(json!({"name_zh": "x", "name_en": "x", "timezone": "Mars/Olympus"})))
        .await;
    assert_error(s, &b, 422, "unknown_timezone", Some("timezone"));

    // accounts: out of range, outside every territory, unknown owner -> rejected with their index
    let (s, b) = sys
        .hq(
            Method::POST,
            "/api/v1/accounts/import",
            &admin,
            Some(json!([
                {"id": "ok-1", "name": "Fine", "lat": 31.5, "lon": 121.2, "attributes": {}},
                {"id": "bad-1", "name": "Far", "lat": 95.0, "lon": 121.2, "attributes": {}},
                {"id": "bad-2", "name": "Sea", "lat": 10.0, "lon": 10.0, "attributes": {}},
                {"id": "bad-3", "name": "Who", "lat": 31.5, "lon": 121.2, "owner_id": "usr_nobody", "attributes": {}},
                {"id": "bad-4", "name": "Typo", "lat": "31.5", "lon": 121.2, "attributes": {}}
            ])),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["imported"], 1);
    let rejected: Vec<(i64, &str)> =
        b["rejected"].as_array().unwrap().iter().map(|r| (r["index"].as_i64().unwrap(), r["error"]["code"].as_str().unwrap())).collect();
    assert_eq!(rejected, [(1, "out_of_range"), (2, "outside_territories"), (3, "unknown_owner"), (4, "invalid_field")]);
    assert_eq!(b["rejected"][3]["error"]["field"], "lat");
    sqlx::query("delete from account where id = 'ok-1'").execute(&sys.db).await.unwrap();

    // oversized bodies
    let big = vec![b' '; 2 << 20];
    let (s, b) = raw(&sys, Method::POST, hq("/api/v1/directives"), &admin, big, "application/json").await;
    assert_error(s, &b, 413, "payload_too_large", None);
    let agent = world.agent("shanghai-west-agent1");
    let mut photo = vec![0xFF, 0xD8, 0xFF];
    photo.resize(11 << 20, 0);
    let (s, b) = raw(&sys, Method::POST, format!("{}/api/v1/photos", sys.field.url), &agent.token, photo, "image/jpeg").await;
    assert_error(s, &b, 413, "payload_too_large", None);
    let (s, b) =
        raw(&sys, Method::POST, format!("{}/api/v1/photos", sys.field.url), &agent.token, b"GIF89a....".to_vec(), "image/gif").await;
    assert_error(s, &b, 415, "unsupported_media_type", None);

    // field side: bad coordinates, bad report kind, unknown task, bad query
    let (s, b) = sys
        .field(
            Method::POST,
            "/api/v1/reports",
            &agent.token,
            Some(json!({"kind": "intel", "text": "x", "tags": [], "location": {"lat": 31.0, "lon": 200.0}})),
        )
        .await;
    assert_error(s, &b, 422, "out_of_range", Some("location.lon"));
    let (s, b) = sys
        .field(
            Method::POST,
            "/api/v1/reports",
            &agent.token,
            Some(json!({"kind": "gossip", "text": "x", "tags": [], "location": {"lat": 31.0, "lon": 121.0}})),
        )
        .await;
    assert_error(s, &b, 422, "invalid_field", Some("kind"));
    let (s, b) = sys.field(Method::POST, "/api/v1/tasks/task_nope/checkin", &agent.token, Some(json!({"lat": 31.0, "lon": 121.0}))).await;
    assert_error(s, &b, 404, "not_found", None);
    let (s, b) = sys.field(Method::GET, "/api/v1/tasks?limit=9999", &agent.token, None).await;
    assert_error(s, &b, 400, "invalid_query", Some("limit"));
    let (s, b) = sys.field(Method::GET, "/api/v1/no/such/route", &agent.token, None).await;
    assert_error(s, &b, 404, "not_found", None);
    // users: bad role, short password
    let (s, b) = sys.hq(Method::POST, "/api/v1/users", &admin, Some(json!({"username": "x1", "password": "p", "display_name": "x", "role": "agent", "city_id": "shanghai", "team_id": "shanghai-west"}))).await;
    assert_error(s, &b, 422, "invalid_field", Some("password"));
    let (s, b) = sys
        .hq(
            Method::POST,
            "/api/v1/users",
            &admin,
            Some(json!({"username": "x1", "password": "password-1", "display_name": "x", "role": "emperor"})),
        )
        .await;
    assert_error(s, &b, 422, "invalid_field", Some("role"));

    assert_eq!(footprint(&sys).await, before, "nothing was written by any bad request");
    sys.stop().await;
}
