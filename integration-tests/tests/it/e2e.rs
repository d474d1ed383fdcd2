//! The closed loop: a directive at HQ becomes tasks in exactly the targeted cities, each agent
//! sees exactly theirs (live, over SSE too), their work and reports come back to HQ's counts.

use std::collections::BTreeSet;

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_directive_reaches_exactly_its_targets_and_the_work_comes_back() {
    let sys = System::start().await;
    let world = world(&sys).await;
    let accounts = accounts(&sys, &world, 6).await;

    // an agent listens on the live feed before anything is issued
    let listener = world.agent("shanghai-west-agent1").clone();
    let mut feed =
        sys.http.get(format!("{}/api/v1/stream", sys.field.url)).bearer_auth(&listener.token).send().await.unwrap().bytes_stream();
    let first = feed.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));

    // restaurants in both cities: 3 of 6 accounts per team, 4 teams
    let (s, d) = sys
        .hq(
            Method::POST,
            "/api/v1/directives",
            &world.strategist,
            Some(directive(Some("category == 'restaurant'"), &["shanghai", "hangzhou"])),
        )
        .await;
    assert_eq!(s, 202, "{d}");
    assert_eq!(d["status"], "pending");
    let id = d["id"].as_str().unwrap().to_string();

    let expected: BTreeSet<String> =
        accounts.iter().filter(|a| a["attributes"]["category"] == "restaurant").map(|a| a["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(expected.len(), 12);
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 12).await;
    let made: BTreeSet<String> = sqlx::query_scalar::<_, String>("select account_id from task where directive_id = $1")
        .bind(&id)
        .fetch_all(&sys.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(made, expected, "one task per matching account, nothing else");

    // the live feed announced the listener's own tasks
    let mut seen = String::new();
    while seen.matches("event: task.assigned").count() < 2 {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await.expect("live event").unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(&listener.id));

    // each agent sees exactly the tasks of the accounts it owns
    for agent in &world.agents {
        let (s, list) = sys.field(Method::GET, "/api/v1/tasks", &agent.token, None).await;
        assert_eq!(s, 200);
        let got: BTreeSet<String> =
            list["items"].as_array().unwrap().iter().map(|t| t["account"]["id"].as_str().unwrap().to_string()).collect();
        let mine: BTreeSet<String> = accounts
            .iter()
            .filter(|a| a["owner_id"] == agent.id.as_str() && a["attributes"]["category"] == "restaurant")
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, mine, "agent {}", agent.username);
        assert!(list["items"].as_array().unwrap().iter().all(|t| t["city_id"] == agent.city.as_str()));
    }

    // an agent works a task through: accept, check in on site, complete
    let agent = world.agent("hangzhou-east-agent1");
    let (_, list) = sys.field(Method::GET, "/api/v1/tasks", &agent.token, None).await;
    let task = &list["items"][0];
    let tid = task["id"].as_str().unwrap();
    assert!(task["title"].as_str().unwrap().starts_with("Visit Shop"), "template rendered: {}", task["title"]);
    let (s, t) = sys.field(Method::POST, &format!("/api/v1/tasks/{tid}/accept"), &agent.token, None).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("accepted")), "{t}");
    let (lat, lon) = (task["account"]["lat"].as_f64().unwrap(), task["account"]["lon"].as_f64().unwrap());
    let (s, e) = sys
        .field(
            Method::POST,
            &format!("/api/v1/tasks/{tid}/checkin"),
            &agent.token,
            Some(json!({"lat": lat + 0.01, "lon": lon, "accuracy_m": 10})),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("too_far")), "{e}");
    assert!(e["error"]["distance_m"].as_f64().unwrap() > 1000.0);
    let (s, t) = sys
        .field(
            Method::POST,
            &format!("/api/v1/tasks/{tid}/checkin"),
            &agent.token,
            Some(json!({"lat": lat + 0.0005, "lon": lon, "accuracy_m": 10})),
        )
        .await;
    assert_eq!((s, t["status"].as_str()), (200, Some("checked_in")), "{t}");
    let (s, e) = sys
        .field(Method::POST, &format!("/api/v1/tasks/{tid}/complete"), &agent.token, Some(json!({"answers": {"competitor": "A"}})))
        .await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("answers.signed")), "{e}");
    let (s, t) = sys
        .field(
            Method::POST,
            &format!("/api/v1/tasks/{tid}/complete"),
            &agent.token,
            Some(json!({"answers": {"signed": true, "competitor": "A"}, "note": "signed on the spot"})),
        )
        .await;
    assert_eq!((s, t["status"].as_str()), (200, Some("completed")), "{t}");
    let statuses: Vec<&str> = t["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["queued", "delivered", "accepted", "checked_in", "completed"]);

    // another rejects; a third files intel
    let other = world.agent("shanghai-east-agent1");
    let (_, list) = sys.field(Method::GET, "/api/v1/tasks", &other.token, None).await;
    let rid = list["items"][0]["id"].as_str().unwrap();
    let (s, t) =
        sys.field(Method::POST, &format!("/api/v1/tasks/{rid}/reject"), &other.token, Some(json!({"reason": "shop closed"}))).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("rejected")), "{t}");
    let (s, r) = sys.field(Method::POST, "/api/v1/reports", &other.token, Some(json!({"kind": "intel", "text": "Competitor A subsidy", "tags": ["competitor_subsidy"], "location": {"lat": 31.5, "lon": 121.7}}))).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["territory_id"], "shanghai-east-t");

    // HQ sees it all: counts per city and the reports
    let d = sys.wait_counts(&id, &[("queued", 0), ("delivered", 10), ("completed", 1), ("rejected", 1)]).await;
    let by_city: Vec<(&str, i64, i64)> = d["by_city"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["city_id"].as_str().unwrap(), c["counts"]["completed"].as_i64().unwrap(), c["counts"]["rejected"].as_i64().unwrap()))
        .collect();
    assert_eq!(by_city, [("hangzhou", 1, 0), ("shanghai", 0, 1)]);
    let (s, reports) = sys.hq(Method::GET, &format!("/api/v1/reports?directive_id={id}"), &world.coo, None).await;
    assert_eq!(s, 200);
    assert_eq!(reports["items"].as_array().unwrap().len(), 1);
    assert_eq!(reports["items"][0]["answers"], json!({"signed": true, "competitor": "A"}));
    assert_eq!(reports["items"][0]["kind"], "completion");
    let (_, intel) = sys.hq(Method::GET, "/api/v1/reports?kind=intel", &world.coo, None).await;
    assert_eq!(intel["items"][0]["tags"], json!(["competitor_subsidy"]));
    let csv = sys
        .http
        .get(format!("{}/api/v1/reports.csv?city_id=hangzhou", sys.hq.url))
        .bearer_auth(&world.coo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("signed"));

    // cancel: the open tasks leave the feeds, the finished ones stay
    let (s, d) = sys.hq(Method::POST, &format!("/api/v1/directives/{id}/cancel"), &world.strategist, None).await;
    assert_eq!(s, 200, "{d}");
    sys.wait_counts(&id, &[("delivered", 0), ("cancelled", 10), ("completed", 1), ("rejected", 1)]).await;
    let (_, list) = sys.field(Method::GET, "/api/v1/tasks?status=delivered", &listener.token, None).await;
    assert_eq!(list["items"], json!([]));
    sys.stop().await;
}

#[tokio::test]
async fn without_an_account_filter_a_directive_makes_one_pool_task_per_team_and_one_claim_wins() {
    let sys = System::start().await;
    let world = world(&sys).await;
    let mut body = directive(None, &["hangzhou"]);
    body["assignment"] = json!("pool");
    body["task"]["require_checkin"] = json!(false);
    let (s, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(body)).await;
    assert_eq!(s, 202, "{d}");
    let id = d["id"].as_str().unwrap();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 2).await;
    let teams: Vec<String> =
        sqlx::query_scalar("select team_id from task where directive_id = $1 and assignee_id is null order by team_id")
            .bind(id)
            .fetch_all(&sys.db)
            .await
            .unwrap();
    assert_eq!(teams, ["hangzhou-east", "hangzhou-west"]);

    let a1 = world.agent("hangzhou-west-agent1");
    let a2 = world.agent("hangzhou-west-agent2");
    let (_, list) = sys.field(Method::GET, "/api/v1/tasks", &a2.token, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "the team's pool task is visible to each member");
    let tid = list["items"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/tasks/{tid}/claim");
    let (r1, r2) = tokio::join!(sys.field(Method::POST, &path, &a1.token, None), sys.field(Method::POST, &path, &a2.token, None));
    let mut codes = [r1.0, r2.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{r1:?} {r2:?}");
    let winner = if r1.0 == 200 { a1 } else { a2 };
    let loser = if r1.0 == 200 { a2 } else { a1 };
    assert_eq!(
        sqlx::query_scalar::<_, String>("select assignee_id from task where id = $1").bind(&tid).fetch_one(&sys.db).await.unwrap(),
        winner.id
    );
    let (s, _) = sys.field(Method::GET, &format!("/api/v1/tasks/{tid}"), &loser.token, None).await;
    assert_eq!(s, 404, "a claimed task leaves the other agents' view");
    // a pool task completes without a check-in when none is required
    let (s, t) = sys.field(Method::POST, &format!("/api/v1/tasks/{tid}/accept"), &winner.token, None).await;
    assert_eq!(s, 200, "{t}");
    let (s, t) =
        sys.field(Method::POST, &format!("/api/v1/tasks/{tid}/complete"), &winner.token, Some(json!({"answers": {"signed": false}}))).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("completed")), "{t}");
    sys.stop().await;
}
