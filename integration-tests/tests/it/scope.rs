//! Every role sees only what its role and city allow: another city's task, account or report
//! answers 404 (not 403: its existence is not revealed).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn no_role_can_read_another_citys_tasks_accounts_or_reports() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 2).await;
    let mut body = directive(Some("gmv_30d >= 0"), &[]);
    body["task"]["require_checkin"] = json!(false);
    let (_, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(body)).await;
    let id = d["id"].as_str().unwrap().to_string();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 8).await;

    let sh_agent = world.agent("shanghai-west-agent1");
    let hz_agent = world.agent("hangzhou-west-agent1");
    let hz_task: String = sqlx::query_scalar("select id from task where city_id = 'hangzhou' limit 1").fetch_one(&sys.db).await.unwrap();
    let hz_account = "acc-hangzhou-west-0";
    let (s, r) = sys
        .field(
            Method::POST,
            "/api/v1/reports",
            &hz_agent.token,
            Some(json!({"kind": "intel", "text": "x", "tags": [], "location": {"lat": 30.0, "lon": 119.6}})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let hz_report = r["id"].as_str().unwrap().to_string();

    // Shanghai's agent and manager: 404 on every Hangzhou object, through both services
    for token in [sh_agent.token.as_str(), world.manager("shanghai")] {
        for (base, path) in [
            (&sys.field.url, format!("/api/v1/tasks/{hz_task}")),
            (&sys.hq.url, format!("/api/v1/accounts/{hz_account}")),
            (&sys.hq.url, format!("/api/v1/reports/{hz_report}")),
            (&sys.field.url, format!("/api/v1/reports/{hz_report}")),
            (&sys.hq.url, "/api/v1/cities/hangzhou/territories".to_string()),
        ] {
            let (s, e) = call(&sys.http, Method::GET, &format!("{base}{path}"), token, None, None).await;
            assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")), "{path}: {e}");
        }
        // nor can they act on it
        for action in ["accept", "claim"] {
            let (s, _) = sys.field(Method::POST, &format!("/api/v1/tasks/{hz_task}/{action}"), token, None).await;
            assert!(s == 404 || s == 403, "{action}: {s}");
        }
        // and lists never include it
        let (_, list) = sys.field(Method::GET, "/api/v1/tasks?limit=500", token, None).await;
        assert!(list["items"].as_array().unwrap().iter().all(|t| t["city_id"] == "shanghai"));
        let (_, reports) = sys.hq(Method::GET, "/api/v1/reports?city_id=hangzhou", token, None).await;
        assert_eq!(reports["items"], json!([]), "{reports}");
    }
    // an agent never sees another agent's task, even in the same team
    let mate = world.agent("shanghai-west-agent2");
    let mates_task: String =
        sqlx::query_scalar("select id from task where assignee_id = $1 limit 1").bind(&mate.id).fetch_one(&sys.db).await.unwrap();
    let (s, _) = sys.field(Method::GET, &format!("/api/v1/tasks/{mates_task}"), &sh_agent.token, None).await;
    assert_eq!(s, 404);
    let (s, _) = sys.field(Method::GET, &format!("/api/v1/tasks/{mates_task}"), world.manager("shanghai"), None).await;
    assert_eq!(s, 200, "the city's manager sees the team's work");
    // HQ roles see every city; field roles may not use HQ's directive API
    for token in [world.coo.as_str(), world.strategist.as_str()] {
        let (s, _) = sys.hq(Method::GET, &format!("/api/v1/reports/{hz_report}"), token, None).await;
        assert_eq!(s, 200);
    }
    let (s, e) = sys.hq(Method::GET, &format!("/api/v1/directives/{id}"), &sh_agent.token, None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = sys.hq(Method::POST, "/api/v1/directives", &world.coo, Some(directive(None, &[]))).await;
    assert_eq!(s, 403, "the COO reads, never writes");
    // and without a token, nothing at all
    let (s, e) = sys.field(Method::GET, "/api/v1/tasks", "", None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = sys.field(Method::GET, "/api/v1/tasks", "forged.token.value", None).await;
    assert_eq!(s, 401);
    sys.stop().await;
}
