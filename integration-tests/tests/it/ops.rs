//! The operating contract: health, metrics, OpenAPI and Swagger UI, migrations once, the
//! bootstrap admin, graceful shutdown.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn each_service_serves_health_metrics_and_its_openapi_document() {
    let sys = System::start().await;
    let urls = [sys.hq.url.clone(), sys.field.url.clone(), sys.dispatcher.as_ref().unwrap().url.clone()];
    for url in &urls {
        for path in ["/health/live", "/health/ready"] {
            let (s, b) = call(&sys.http, Method::GET, &format!("{url}{path}"), "", None, None).await;
            assert_eq!(s, 200, "{url}{path}: {b}");
        }
        let metrics = sys.http.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status().as_u16(), 200);
        let (s, doc) = call(&sys.http, Method::GET, &format!("{url}/api-docs/openapi.json"), "", None, None).await;
        assert_eq!(s, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let ui = sys.http.get(format!("{url}/swagger-ui/")).send().await.unwrap();
        assert_eq!(ui.status().as_u16(), 200);
        let html = ui.text().await.unwrap();
        assert!(!html.contains("cdn") && !html.contains("unpkg"), "Swagger UI is served locally");
    }
    let (_, hq_doc) = call(&sys.http, Method::GET, &format!("{}/api-docs/openapi.json", sys.hq.url), "", None, None).await;
    for p in [
        "/api/v1/directives",
        "/api/v1/directives/{id}/cancel",
        "/api/v1/accounts/import",
        "/api/v1/cities/{city_id}/territories",
        "/api/v1/reports.csv",
        "/api/v1/auth/login",
    ] {
        assert!(hq_doc["paths"].get(p).is_some(), "hq-console documents {p}");
    }
    let (_, field_doc) = call(&sys.http, Method::GET, &format!("{}/api-docs/openapi.json", sys.field.url), "", None, None).await;
    for p in [
        "/api/v1/tasks",
        "/api/v1/tasks/{id}/checkin",
        "/api/v1/tasks/{id}/complete",
        "/api/v1/reports",
        "/api/v1/photos",
        "/api/v1/stream",
    ] {
        assert!(field_doc["paths"].get(p).is_some(), "city-agent-api documents {p}");
    }
    // a token from one service is accepted by the other
    let (s, _) = sys.field(Method::GET, "/api/v1/tasks", &sys.admin, None).await;
    assert_eq!(s, 200);
    // the delivery counter shows up once something was delivered
    let world = world(&sys).await;
    let (s, _) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(directive(None, &["shanghai"]))).await;
    assert_eq!(s, 202);
    sys.wait_count("select count(*) from task where status = 'delivered'", 2).await;
    let text = sys.http.get(format!("{}/metrics", sys.field.url)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("fieldops_tasks_delivered_total"), "{text}");
    sys.stop().await;
}

#[tokio::test]
async fn migrations_apply_once_and_the_bootstrap_admin_is_made_only_on_an_empty_user_table() {
    let settings = settings().await;
    // three services starting at once against one database
    let (a, b, c) =
        tokio::join!(hq_console::build(settings.clone()), city_agent_api::build(settings.clone()), dispatcher::build(settings.clone()));
    let (a, b, c) = (a.unwrap().spawn(), b.unwrap().spawn(), c.unwrap().spawn());
    let db = fieldops_core::platform::db::connect(&settings.database).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&db).await.unwrap();
    assert_eq!(applied as usize, fieldops_core::platform::db::MIGRATOR.iter().count());
    let admins: i64 = sqlx::query_scalar("select count(*) from app_user where role = 'admin'").fetch_one(&db).await.unwrap();
    assert_eq!(admins, 1);
    // graceful stop: each returns Ok
    for (_, stop, handle) in [a, b, c] {
        stop.cancel();
        handle.await.unwrap().unwrap();
    }
    // a non-empty user table gets no second admin, whatever the bootstrap settings say
    let mut other = settings.clone();
    other.auth.bootstrap_admin_username = "another-admin".into();
    let (_, stop, handle) = hq_console::build(other).await.unwrap().spawn();
    let admins: Vec<String> = sqlx::query_scalar("select username from app_user where role = 'admin'").fetch_all(&db).await.unwrap();
    assert_eq!(admins, [ADMIN]);
    stop.cancel();
    handle.await.unwrap().unwrap();
    let _ = json!({});
}

#[tokio::test]
async fn configuration_refuses_a_missing_secret() {
    let mut s = fieldops_core::Settings::defaults();
    assert!(s.validate().is_err(), "an empty token secret is refused");
    s.auth.token_secret = secrecy::SecretString::from("x".repeat(40));
    assert!(s.validate().is_ok());
    s.auth.token_ttl = "forever".into();
    assert!(s.validate().is_err());
}

#[tokio::test]
async fn the_janitor_deletes_bookkeeping_past_its_retention_and_keeps_the_rest() {
    let sys = System::start().await;
    let world = world(&sys).await;
    // bookkeeping appears: an idempotent report and the feedback consumer's de-duplication rows
    let agent = world.agent("shanghai-west-agent1");
    let (s, _) = sys
        .field_idem(
            "/api/v1/reports",
            &agent.token,
            json!({"kind": "intel", "text": "x", "tags": [], "location": {"lat": 31.2, "lon": 121.2}}),
            "k1",
        )
        .await;
    assert_eq!(s, 201);
    sys.wait_count("select count(*) from processed_message", 1).await;
    assert_eq!(sys.count("select count(*) from idempotency_key").await, 1);
    let seven_days = chrono::Duration::days(7);
    // a day later nothing is old enough
    let swept = dispatcher::janitor::sweep(&sys.db, chrono::Utc::now() + chrono::Duration::days(1), seven_days, seven_days).await.unwrap();
    assert_eq!(swept, dispatcher::janitor::Swept::default());
    // eight days later both go
    let swept = dispatcher::janitor::sweep(&sys.db, chrono::Utc::now() + chrono::Duration::days(8), seven_days, seven_days).await.unwrap();
    assert_eq!((swept.processed_messages, swept.idempotency_keys), (1, 1));
    assert_eq!(sys.count("select count(*) from processed_message").await + sys.count("select count(*) from idempotency_key").await, 0);
    sys.stop().await;
}
