//! Nothing lost, nothing doubled: a delivery worker that dies between read and ack, outbox rows
//! relayed twice, a completion retried with its idempotency key.

use fieldops_core::platform::app::Shared;
use fieldops_core::queue::streams;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// How the worker is "killed": a consumer in the `delivery` group reads the city's entries and
/// then disappears without acking (the state a SIGKILL between XREADGROUP and XACK leaves, made
/// deterministic). In the second case it even commits the database change before dying. A real
/// delivery worker started afterwards must reclaim the entries (XAUTOCLAIM) and deliver every
/// task exactly once.
#[tokio::test]
async fn a_delivery_worker_killed_between_read_and_ack_loses_and_doubles_nothing() {
    let sys = System::start_with(true, false).await;
    let world = world(&sys).await;
    accounts(&sys, &world, 10).await;
    let (s, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(directive(Some("gmv_30d >= 0"), &["shanghai"]))).await;
    assert_eq!(s, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}'"), 20).await;
    // wait until the relay has moved every outbox row of the directive to Redis
    sys.wait_count("select count(*) from outbox", 0).await;

    let shared = Shared::connect(sys.settings.clone()).await.unwrap();
    let key = shared.keys.city_tasks("shanghai");
    let mut conn = shared.redis.clone();
    streams::ensure_group(&mut conn, &key, city_agent_api::delivery::GROUP).await.unwrap();
    let entries = streams::read_group(&mut conn, &key, city_agent_api::delivery::GROUP, "doomed-worker", ">", 100, None).await.unwrap();
    assert!(!entries.is_empty());
    // the doomed worker commits the first entry's delivery, then dies before acking anything
    city_agent_api::delivery::handle(&shared, &entries[0]).await.unwrap();
    let delivered_before = sys.count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'")).await;
    assert!(delivered_before > 0 && delivered_before < 20, "{delivered_before}");

    // a fresh worker takes over the idle entries
    let field = start_field(&sys.settings, true).await;
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 20).await;
    sys.wait_counts(&id, &[("queued", 0), ("delivered", 20)]).await;
    // nothing left pending, and the count stays exact (no double delivery) after more reclaim rounds
    let pending: redis::Value = redis::cmd("XPENDING").arg(&key).arg(city_agent_api::delivery::GROUP).query_async(&mut conn).await.unwrap();
    match pending {
        redis::Value::Array(v) => assert_eq!(v[0], redis::Value::Int(0), "no entry left pending"),
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
    let d = sys.wait_counts(&id, &[("queued", 0), ("delivered", 20)]).await;
    assert_eq!(d["by_city"].as_array().unwrap().len(), 1);
    let delivered_at_changes =
        sys.count(&format!("select count(distinct delivered_at) from task where directive_id = '{id}' and delivered_at is not null")).await;
    assert!(delivered_at_changes >= 1);
    field.stop().await;
    sys.stop().await;
}

/// The relay is "killed" after XADD and before its delete commits: the same outbox rows are
/// written to the streams twice. Consumers must apply each once.
#[tokio::test]
async fn outbox_rows_relayed_twice_do_not_double_anything() {
    // no dispatcher running: we drive materialisation and the relay by hand
    let sys = System::start_with(false, false).await;
    let world = world(&sys).await;
    accounts(&sys, &world, 4).await;
    let (s, d) =
        sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(directive(Some("category == 'restaurant'"), &[]))).await;
    assert_eq!(s, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    dispatcher::materialise::materialise_next(&sys.db, 3).await.unwrap().expect("a pending directive");
    // materialising again finds nothing pending and makes nothing new
    assert!(dispatcher::materialise::materialise_next(&sys.db, 3).await.unwrap().is_none());
    assert_eq!(sys.count(&format!("select count(*) from task where directive_id = '{id}'")).await, 8);

    let shared = Shared::connect(sys.settings.clone()).await.unwrap();
    // a relay that dies after XADD and before its DELETE commits: the rows reach Redis and stay
    // in the outbox; the next relay round sends the very same rows (same outbox ids) again
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select id, stream, payload::text from outbox order by id").fetch_all(&sys.db).await.unwrap();
    assert!(rows.len() >= 4, "tasks.created per city in chunks of 3, plus nothing else yet: {}", rows.len());
    let entries: Vec<(String, i64, String)> = rows.iter().map(|(id, s, p)| (shared.keys.resolve(s), *id, p.clone())).collect();
    let mut conn = shared.redis.clone();
    streams::xadd_many(&mut conn, &entries).await.unwrap();
    while dispatcher::relay::relay_once(&shared).await.unwrap() > 0 {}
    let stream_len: i64 = redis::cmd("XLEN").arg(shared.keys.city_tasks("shanghai")).query_async(&mut conn).await.unwrap();
    let shanghai_rows = rows.iter().filter(|r| r.1 == "city:shanghai").count() as i64;
    assert_eq!(stream_len, 2 * shanghai_rows, "every message is on the stream twice");

    let field = start_field(&sys.settings, true).await;
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 8).await;
    // the delivery transitions wait in the outbox (no dispatcher runs): send them twice as well
    sys.wait_count("select count(*) from outbox", 4).await;
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("select id, stream, payload::text from outbox order by id").fetch_all(&sys.db).await.unwrap();
    assert!(rows.iter().all(|r| r.1 == "feedback"));
    let entries: Vec<(String, i64, String)> = rows.iter().map(|(id, s, p)| (shared.keys.resolve(s), *id, p.clone())).collect();
    streams::xadd_many(&mut conn, &entries).await.unwrap();
    while dispatcher::relay::relay_once(&shared).await.unwrap() > 0 {}
    let disp = start_dispatcher(&sys.settings).await;
    let d = sys.wait_counts(&id, &[("queued", 0), ("delivered", 8)]).await;
    assert_eq!(d["counts"]["delivered"], 8);
    disp.stop().await;
    field.stop().await;
    sys.stop().await;
}

#[tokio::test]
async fn a_completion_retried_with_its_key_stores_one_report_and_a_reused_key_is_a_conflict() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 2).await;
    let mut body = directive(Some("category == 'restaurant'"), &["shanghai"]);
    body["task"]["require_checkin"] = json!(false);
    let (_, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(body)).await;
    let id = d["id"].as_str().unwrap().to_string();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{id}' and status = 'delivered'"), 2).await;
    let agent = world.agent("shanghai-west-agent1");
    let (_, list) = sys.field(Method::GET, "/api/v1/tasks", &agent.token, None).await;
    let tid = list["items"][0]["id"].as_str().unwrap().to_string();
    sys.field(Method::POST, &format!("/api/v1/tasks/{tid}/accept"), &agent.token, None).await;

    let answers = json!({"answers": {"signed": true}, "note": "done"});
    let path = format!("/api/v1/tasks/{tid}/complete");
    // the phone retries (e.g. the first answer was lost on the network), concurrently too
    let (a, b) = tokio::join!(
        sys.field_idem(&path, &agent.token, answers.clone(), "phone-key-1"),
        sys.field_idem(&path, &agent.token, answers.clone(), "phone-key-1")
    );
    let c = sys.field_idem(&path, &agent.token, answers.clone(), "phone-key-1").await;
    assert_eq!((a.0, b.0, c.0), (200, 200, 200));
    assert_eq!(a.1, c.1, "the stored first answer is replayed");
    assert_eq!(sys.count(&format!("select count(*) from report where task_id = '{tid}'")).await, 1);

    let (s, e) = sys.field_idem(&path, &agent.token, json!({"answers": {"signed": false}}), "phone-key-1").await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("idempotency_key_reused")), "{e}");
    assert_eq!(sys.count(&format!("select count(*) from report where task_id = '{tid}'")).await, 1);

    // the same for a free report: one row however often it is retried
    let intel = json!({"kind": "issue", "text": "Fridge broken", "tags": [], "location": {"lat": 31.2, "lon": 121.2}});
    for _ in 0..3 {
        let (s, r) = sys.field_idem("/api/v1/reports", &agent.token, intel.clone(), "phone-key-2").await;
        assert_eq!(s, 201, "{r}");
    }
    assert_eq!(sys.count("select count(*) from report where kind = 'issue'").await, 1);
    assert_eq!(sys.count("select count(*) from escalation").await, 1);
    sys.stop().await;
}

/// A dispatcher that dies part-way through a fan-out: it claimed the directive and committed the
/// first chunk (tasks, outbox rows, counts), then was killed. Its lease expires; the next
/// dispatcher takes the directive over, creates only the missing tasks, and the counts are exact.
#[tokio::test]
async fn a_dispatcher_dying_mid_fan_out_is_taken_over_without_losing_or_doubling_tasks() {
    let sys = System::start_with(false, true).await;
    let world = world(&sys).await;
    accounts(&sys, &world, 5).await;
    let (s, d) = sys.hq(Method::POST, "/api/v1/directives", &world.strategist, Some(directive(Some("gmv_30d >= 0"), &[]))).await;
    assert_eq!(s, 202, "{d}");
    let id = d["id"].as_str().unwrap().to_string();

    // the doomed dispatcher: claims, resolves, writes 7 of the 20 tasks, dies
    let claim = dispatcher::materialise::claim(&sys.db, "doomed").await.unwrap().expect("claimable");
    let resolution = {
        let mut conn = sys.db.acquire().await.unwrap();
        fieldops_core::dispatch::resolve(&mut conn, &claim.target, &claim.template, claim.assignment).await.unwrap()
    };
    assert_eq!(resolution.tasks.len(), 20);
    let due = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(dispatcher::materialise::write_chunk(&sys.db, &claim, due, &resolution.tasks[..7], 5).await.unwrap(), Some(7));
    // while its lease holds, nobody else may take the directive
    assert!(dispatcher::materialise::materialise_next(&sys.db, 5).await.unwrap().is_none());
    // the lease runs out
    sqlx::query("update directive set lease_until = now() - interval '1 second' where id = $1").bind(&id).execute(&sys.db).await.unwrap();
    assert_eq!(dispatcher::materialise::materialise_next(&sys.db, 5).await.unwrap().as_deref(), Some(id.as_str()));
    // the doomed one, should it wake up, can no longer write
    assert_eq!(dispatcher::materialise::write_chunk(&sys.db, &claim, due, &resolution.tasks[7..], 5).await.unwrap(), None);

    assert_eq!(sys.count(&format!("select count(*) from task where directive_id = '{id}'")).await, 20);
    assert_eq!(sys.count(&format!("select count(distinct account_id) from task where directive_id = '{id}'")).await, 20);
    assert_eq!(
        sys.count(&format!("select coalesce(sum(n), 0)::bigint from directive_count where directive_id = '{id}' and status = 'queued'"))
            .await,
        20
    );
    let status: String = sqlx::query_scalar("select status from directive where id = $1").bind(&id).fetch_one(&sys.db).await.unwrap();
    assert_eq!(status, "dispatched");
    // relayed and delivered: every task once
    let disp = start_dispatcher(&sys.settings).await;
    sys.wait_counts(&id, &[("queued", 0), ("delivered", 20)]).await;
    disp.stop().await;
    sys.stop().await;
}
