//! Strategy rules: checked at save, versioned and audited, previewed without writing, fired by
//! hand, by cron (exactly once per occurrence, across DST and racing dispatchers) and by field
//! reports (the closed loop); assignment policies.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn rule(trigger: Value, accounts: Option<&str>) -> Value {
    let mut d = directive(accounts, &[]);
    d["name"] = json!("Re-visit restaurants");
    d["trigger"] = trigger;
    d
}

async fn create_rule(sys: &System, token: &str, body: Value) -> Value {
    let (s, r) = sys.hq(Method::POST, "/api/v1/rules", token, Some(body)).await;
    assert_eq!(s, 201, "{r}");
    r
}

#[tokio::test]
async fn rules_are_checked_when_saved_with_the_position_of_the_problem() {
    let sys = System::start_with(false, false).await;
    let world = world(&sys).await;
    accounts(&sys, &world, 2).await;
    let t = &world.strategist;
    let manual = json!({"kind": "manual"});
    let cases: Vec<(Value, &str, &str, Option<i64>)> = vec![
        (rule(manual.clone(), Some("category == 'restaurant' &&")), "invalid_expression", "target.accounts", None),
        (rule(manual.clone(), Some("categry == 'restaurant'")), "unknown_attribute", "target.accounts", Some(0)),
        (rule(manual.clone(), Some("gmv_30d > 5 && colour == 'red'")), "unknown_attribute", "target.accounts", Some(15)),
        (rule(manual.clone(), Some("category > 5")), "type_error", "target.accounts", None),
        (
            rule(json!({"kind": "cron", "cron": "30 9 * * Mon-Fri", "timezone": "Asia/Shanghai"}), None),
            "invalid_schedule",
            "trigger.cron",
            None,
        ),
        (
            rule(json!({"kind": "cron", "cron": "0 30 9 * * Mon-Fri", "timezone": "Asia/Atlantis"}), None),
            "invalid_schedule",
            "trigger.timezone",
            None,
        ),
        (
            rule(json!({"kind": "report", "filter": "kind == 'intel' && mood == 'sad'", "threshold": 3, "window": "24h"}), None),
            "unknown_attribute",
            "trigger.filter",
            Some(19),
        ),
        (
            rule(json!({"kind": "report", "filter": "kind == 'intel'", "threshold": 0, "window": "24h"}), None),
            "invalid_field",
            "trigger.threshold",
            None,
        ),
        (
            rule(json!({"kind": "report", "filter": "kind == 'intel'", "threshold": 3, "window": "a day"}), None),
            "invalid_field",
            "trigger.window",
            None,
        ),
        (rule(json!({"kind": "sometimes"}), None), "invalid_field", "trigger.kind", None),
    ];
    for (body, code, field, position) in cases {
        let (s, e) = sys.hq(Method::POST, "/api/v1/rules", t, Some(body.clone())).await;
        assert_eq!((s, e["error"]["code"].as_str(), e["error"]["field"].as_str()), (422, Some(code), Some(field)), "{body}: {e}");
        if let Some(p) = position {
            assert_eq!(e["error"]["position"], p, "{e}");
        }
    }
    let mut bad_template = rule(manual.clone(), None);
    bad_template["task"]["title"] = json!("Visit {{account.nickname}}");
    let (s, e) = sys.hq(Method::POST, "/api/v1/rules", t, Some(bad_template)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unknown_placeholder")));
    assert_eq!(sys.count("select count(*) from rule").await, 0, "nothing saved");

    let r = create_rule(
        &sys,
        t,
        rule(
            json!({"kind": "cron", "cron": "0 0 9 * * Mon", "timezone": "Asia/Shanghai"}),
            Some("category == 'restaurant' && gmv_30d >= 0"),
        ),
    )
    .await;
    assert_eq!((r["version"].as_i64(), r["enabled"].as_bool()), (Some(1), Some(true)));
    let next = r["next_occurrences"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    assert!(next.iter().all(|o| o.as_str().unwrap().ends_with("+08:00")), "{next:?}");
    sys.stop().await;
}

#[tokio::test]
async fn editing_makes_a_version_and_every_save_toggle_fire_and_cancel_is_audited() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 2).await;
    let t = world.strategist.clone();
    let r = create_rule(&sys, &t, rule(json!({"kind": "manual"}), Some("category == 'restaurant'"))).await;
    let id = r["id"].as_str().unwrap().to_string();
    let mut body = rule(json!({"kind": "manual"}), Some("category == 'cafe'"));
    body["enabled"] = json!(false);
    let (s, v2) = sys.hq(Method::PUT, &format!("/api/v1/rules/{id}"), &t, Some(body.clone())).await;
    assert_eq!((s, v2["version"].as_i64()), (200, Some(2)), "{v2}");
    let (s, e) = sys.hq(Method::POST, &format!("/api/v1/rules/{id}/fire"), &t, None).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("rule_disabled")));
    body["enabled"] = json!(true);
    let (_, v3) = sys.hq(Method::PUT, &format!("/api/v1/rules/{id}"), &t, Some(body)).await;
    assert_eq!(v3["version"], 3);
    let (s, d) = sys.hq(Method::POST, &format!("/api/v1/rules/{id}/fire"), &t, None).await;
    assert_eq!(s, 202, "{d}");
    assert_eq!((d["rule_id"].as_str(), d["rule_version"].as_i64()), (Some(id.as_str()), Some(3)));
    let did = d["id"].as_str().unwrap().to_string();
    // version 3's filter: the cafes (one per team, four teams)
    sys.wait_count(&format!("select count(*) from task where directive_id = '{did}' and status = 'delivered'"), 4).await;
    let cafes: i64 = sys.count(&format!("select count(*) from task t join account a on a.id = t.account_id where t.directive_id = '{did}' and a.attributes->>'category' = 'cafe'")).await;
    assert_eq!(cafes, 4, "the directive used version 3's filter");
    assert_eq!(sys.count(&format!("select count(*) from task where directive_id = '{did}' and rule_id = '{id}'")).await, 4);
    let (s, _) = sys.hq(Method::POST, &format!("/api/v1/directives/{did}/cancel"), &t, None).await;
    assert_eq!(s, 200);
    let versions = sys.count(&format!("select count(*) from rule_version where rule_id = '{id}'")).await;
    assert_eq!(versions, 3);
    let actions: Vec<String> = sqlx::query_scalar("select action from audit_event where object_id in ($1, $2) order by id")
        .bind(&id)
        .bind(&did)
        .fetch_all(&sys.db)
        .await
        .unwrap();
    for a in ["rule.create", "rule.update", "rule.disable", "rule.enable", "rule.fire", "directive.cancel"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let who: Vec<Option<String>> = sqlx::query_scalar("select actor_id from audit_event where object_id = $1 and action like 'rule.%'")
        .bind(&id)
        .fetch_all(&sys.db)
        .await
        .unwrap();
    assert!(who.iter().all(|w| w.is_some()), "every rule action names who");
    sys.stop().await;
}

async fn footprint(sys: &System) -> Vec<i64> {
    let mut v = Vec::new();
    for t in ["directive", "task", "outbox", "audit_event", "rule_firing", "idempotency_key"] {
        v.push(sys.count(&format!("select count(*) from {t}")).await);
    }
    v
}

#[tokio::test]
async fn a_preview_changes_nothing_and_matches_what_firing_produces() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 6).await;
    let t = world.strategist.clone();
    let mut body = rule(json!({"kind": "manual"}), Some("category == 'restaurant' && gmv_30d >= 2000"));
    body["task"]["title"] = json!("Visit {{account.name}} (GMV {{account.gmv_30d}})");
    let r = create_rule(&sys, &t, body).await;
    let id = r["id"].as_str().unwrap();
    let before = footprint(&sys).await;
    let (s, p) = sys.hq(Method::POST, &format!("/api/v1/rules/{id}/preview"), &world.coo, None).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(footprint(&sys).await, before, "a preview writes nothing");
    // restaurants are the even i of 0..6 with gmv 1000*i >= 2000: i = 2, 4 -> 2 per team, 4 teams
    assert_eq!(p["tasks"], 8);
    assert_eq!(
        p["by_city"],
        json!([
            {"city_id": "hangzhou", "tasks": 4, "agents": 2, "territories": 2, "pool": 0},
            {"city_id": "shanghai", "tasks": 4, "agents": 2, "territories": 2, "pool": 0}
        ])
    );
    assert_eq!(p["load"].as_array().unwrap().len(), 4);
    assert!(p["load"].as_array().unwrap().iter().all(|l| l["new"] == 2 && l["open"] == 0), "{}", p["load"]);
    let title = p["sample"][0]["title"].as_str().unwrap();
    assert!(title.starts_with("Visit Shop") && (title.ends_with("(GMV 2000)") || title.ends_with("(GMV 4000)")), "{title}");

    let (_, d) = sys.hq(Method::POST, &format!("/api/v1/rules/{id}/fire"), &t, None).await;
    let did = d["id"].as_str().unwrap();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{did}'"), 8).await;
    let by_city: Vec<(String, i64, i64)> =
        sqlx::query_as("select city_id, count(*), count(distinct assignee_id) from task where directive_id = $1 group by 1 order by 1")
            .bind(did)
            .fetch_all(&sys.db)
            .await
            .unwrap();
    assert_eq!(by_city, [("hangzhou".to_string(), 4, 2), ("shanghai".to_string(), 4, 2)]);
    // with the load now open, the preview reports it
    let (_, p2) = sys.hq(Method::POST, &format!("/api/v1/rules/{id}/preview"), &world.coo, None).await;
    assert!(p2["load"].as_array().unwrap().iter().all(|l| l["open"] == 2), "{}", p2["load"]);
    sys.stop().await;
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

/// Runs the scheduler every 15 minutes of simulated time from `from` to `to`.
async fn run_clock(sys: &System, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut now = from;
    while now <= to {
        dispatcher::scheduler::fire_due(&sys.db, now, chrono::Duration::minutes(15)).await.unwrap();
        now += chrono::Duration::minutes(15);
    }
}

#[tokio::test]
async fn cron_rules_fire_each_local_occurrence_once_across_both_dst_changes() {
    let sys = System::start_with(false, false).await;
    let world = world(&sys).await;
    let t = world.strategist.clone();
    let ny = |cron: &str| rule(json!({"kind": "cron", "cron": cron, "timezone": "America/New_York"}), None);
    let spring = create_rule(&sys, &t, ny("0 30 2 * * *")).await["id"].as_str().unwrap().to_string();
    let fall = create_rule(&sys, &t, ny("0 30 1 * * *")).await["id"].as_str().unwrap().to_string();

    // spring forward, 2026-03-08: local 02:30 does not exist
    sqlx::query("update rule set cron_next_at = $2 where id = $1")
        .bind(&spring)
        .bind(utc(2026, 3, 6, 12, 0))
        .execute(&sys.db)
        .await
        .unwrap();
    sqlx::query("update rule set cron_next_at = null where id = $1").bind(&fall).execute(&sys.db).await.unwrap();
    run_clock(&sys, utc(2026, 3, 6, 12, 0), utc(2026, 3, 10, 12, 0)).await;
    let spring_days: Vec<String> =
        sqlx::query_scalar("select firing_key from rule_firing where rule_id = $1 and status = 'fired' order by occurrence_at")
            .bind(&spring)
            .fetch_all(&sys.db)
            .await
            .unwrap();
    assert_eq!(spring_days.len(), 4, "one firing per day, none doubled: {spring_days:?}");
    let dates: std::collections::BTreeSet<String> = spring_days.iter().map(|k| k[5..15].to_string()).collect();
    assert_eq!(dates.len(), 4, "{spring_days:?}");
    assert_eq!(sys.count(&format!("select count(*) from directive where rule_id = '{spring}'")).await, 4);

    // fall back, 2026-11-01: local 01:30 happens twice
    sqlx::query("update rule set cron_next_at = $2 where id = $1")
        .bind(&fall)
        .bind(utc(2026, 10, 30, 12, 0))
        .execute(&sys.db)
        .await
        .unwrap();
    sqlx::query("update rule set cron_next_at = null where id = $1").bind(&spring).execute(&sys.db).await.unwrap();
    run_clock(&sys, utc(2026, 10, 30, 12, 0), utc(2026, 11, 3, 12, 0)).await;
    let fired: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("select firing_key, occurrence_at from rule_firing where rule_id = $1 order by occurrence_at")
            .bind(&fall)
            .fetch_all(&sys.db)
            .await
            .unwrap();
    let keys: Vec<&str> = fired.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["cron:2026-10-31T01:30:00", "cron:2026-11-01T01:30:00", "cron:2026-11-02T01:30:00", "cron:2026-11-03T01:30:00"]);
    assert_eq!(fired[1].1, utc(2026, 11, 1, 5, 30), "the first 01:30 (EDT) fires, the repeated one (EST) does not");
    assert_eq!(fired[2].1, utc(2026, 11, 2, 6, 30), "after the change, 01:30 EST");
    sys.stop().await;
}

#[tokio::test]
async fn racing_dispatchers_make_one_directive_per_occurrence_and_missed_ones_are_caught_up_or_skipped() {
    let sys = System::start_with(false, false).await;
    let world = world(&sys).await;
    let t = world.strategist.clone();
    let r = create_rule(&sys, &t, rule(json!({"kind": "cron", "cron": "0 0 * * * *", "timezone": "Asia/Shanghai"}), None)).await;
    let id = r["id"].as_str().unwrap().to_string();
    sqlx::query("update rule set cron_next_at = $2 where id = $1").bind(&id).bind(utc(2026, 12, 1, 0, 0)).execute(&sys.db).await.unwrap();
    // two dispatchers wake at the same instant, ten times over
    for h in 0..10 {
        let now = utc(2026, 12, 1, h, 0) + chrono::Duration::seconds(1);
        let (a, b) = tokio::join!(
            dispatcher::scheduler::fire_due(&sys.db, now, chrono::Duration::minutes(15)),
            dispatcher::scheduler::fire_due(&sys.db, now, chrono::Duration::minutes(15))
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1, "hour {h}: exactly one of them fires");
    }
    assert_eq!(sys.count(&format!("select count(*) from directive where rule_id = '{id}'")).await, 10);
    // all dispatchers down for 5 hours: on restart the occurrences within the 15-minute
    // catch-up window fire, older ones are recorded as skipped
    let restart = utc(2026, 12, 1, 15, 10);
    dispatcher::scheduler::fire_due(&sys.db, restart, chrono::Duration::minutes(15)).await.unwrap();
    let after: Vec<(String, String)> =
        sqlx::query_as("select firing_key, status from rule_firing where rule_id = $1 and occurrence_at > $2 order by occurrence_at")
            .bind(&id)
            .bind(utc(2026, 12, 1, 9, 30))
            .fetch_all(&sys.db)
            .await
            .unwrap();
    let statuses: Vec<&str> = after.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped", "skipped", "skipped", "skipped", "fired"], "{after:?}");
    assert_eq!(sys.count(&format!("select count(*) from directive where rule_id = '{id}'")).await, 11);
    sys.stop().await;
}

async fn intel(sys: &System, agent: &Agent, lat: f64, lon: f64, tags: Value) {
    let (s, r) = sys
        .field(
            Method::POST,
            "/api/v1/reports",
            &agent.token,
            Some(json!({"kind": "intel", "text": "Competitor A pays 20% subsidy", "tags": tags, "location": {"lat": lat, "lon": lon}})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
}

#[tokio::test]
async fn three_competitor_reports_in_a_district_within_a_day_fire_one_counter_visit_directive() {
    let sys = System::start().await;
    let world = world(&sys).await;
    accounts(&sys, &world, 4).await;
    let mut body = rule(
        json!({"kind": "report", "filter": "kind == 'intel' && 'competitor_subsidy' in tags", "threshold": 3, "window": "24h", "group_by": "territory"}),
        Some("gmv_30d >= 2000"),
    );
    body["task"]["priority"] = json!("urgent");
    body["task"]["title"] = json!("Counter-visit {{account.name}}");
    let r = create_rule(&sys, &world.strategist, body).await;
    let id = r["id"].as_str().unwrap().to_string();
    let count_directives = format!("select count(*) from directive where rule_id = '{id}'");
    let a = world.agent("shanghai-east-agent1");
    let b = world.agent("shanghai-east-agent2");
    let (east_lat, east_lon) = (31.5, 121.75);
    // two matching reports, one in another district, one that does not match: below threshold
    intel(&sys, a, east_lat, east_lon, json!(["competitor_subsidy"])).await;
    intel(&sys, b, east_lat, east_lon, json!(["competitor_subsidy"])).await;
    intel(&sys, world.agent("shanghai-west-agent1"), 31.5, 121.25, json!(["competitor_subsidy"])).await;
    intel(&sys, a, east_lat, east_lon, json!(["price_change"])).await;
    sys.wait_count(&format!("select count(*) from rule_report_match where rule_id = '{id}'"), 3).await;
    assert_eq!(sys.count(&count_directives).await, 0);
    // the third in the district: exactly one directive, for that district's top accounts
    intel(&sys, a, east_lat, east_lon, json!(["competitor_subsidy", "urgent"])).await;
    sys.wait_count(&format!("select count(*) from directive where rule_id = '{id}'"), 1).await;
    let target: Value = sqlx::query_scalar("select target from directive where rule_id = $1").bind(&id).fetch_one(&sys.db).await.unwrap();
    assert_eq!(target["territories"], json!(["shanghai-east-t"]));
    let did: String = sqlx::query_scalar("select id from directive where rule_id = $1").bind(&id).fetch_one(&sys.db).await.unwrap();
    sys.wait_count(&format!("select count(*) from task where directive_id = '{did}'"), 2).await;
    let titles: Vec<String> =
        sqlx::query_scalar("select title from task where directive_id = $1 order by title").bind(&did).fetch_all(&sys.db).await.unwrap();
    assert_eq!(titles, ["Counter-visit Shop 2 of shanghai-east", "Counter-visit Shop 3 of shanghai-east"]);
    // more inside the window: no second directive
    for _ in 0..3 {
        intel(&sys, b, east_lat, east_lon, json!(["competitor_subsidy"])).await;
    }
    sys.wait_count(&format!("select count(*) from rule_report_match where rule_id = '{id}'"), 7).await;
    assert_eq!(sys.count(&count_directives).await, 1);
    // a day later (the earlier matches and the firing move 25 h into the past): three new reports fire again
    sqlx::query("update rule_report_match set reported_at = reported_at - interval '25 hours' where rule_id = $1")
        .bind(&id)
        .execute(&sys.db)
        .await
        .unwrap();
    sqlx::query("update rule_group_state set last_fired_at = last_fired_at - interval '25 hours' where rule_id = $1")
        .bind(&id)
        .execute(&sys.db)
        .await
        .unwrap();
    for agent in [a, b] {
        intel(&sys, agent, east_lat, east_lon, json!(["competitor_subsidy"])).await;
    }
    sys.wait_count(&format!("select count(*) from rule_report_match where rule_id = '{id}'"), 9).await;
    assert_eq!(sys.count(&count_directives).await, 1, "two in the new window are not enough");
    intel(&sys, a, east_lat, east_lon, json!(["competitor_subsidy"])).await;
    sys.wait_count(&format!("select count(*) from directive where rule_id = '{id}'"), 2).await;
    sys.stop().await;
}

#[tokio::test]
async fn each_assignment_policy_picks_the_expected_agent() {
    let sys = System::start().await;
    let world = world(&sys).await;
    let admin = sys.admin.clone();
    // Hangzhou west: agent1 lives at (29.9, 119.6), agent2 at (30.0, 119.7); one account near agent2, owned by agent1
    let a1 = world.agent("hangzhou-west-agent1");
    let a2 = world.agent("hangzhou-west-agent2");
    let (s, b) = sys.hq(Method::POST, "/api/v1/accounts/import", &admin, Some(json!([
        {"id": "near-a2", "name": "Near two", "lat": 30.01, "lon": 119.71, "owner_id": a1.id, "attributes": {"category": "restaurant", "gmv_30d": 1}}
    ]))).await;
    assert_eq!((s, b["imported"].as_i64()), (200, Some(1)), "{b}");
    let assigned = |policy: &'static str| {
        let sys = &sys;
        let t = world.strategist.clone();
        async move {
            let mut d = directive(Some("id == 'near-a2'"), &["hangzhou"]);
            d["assignment"] = json!(policy);
            let (s, d) = sys.hq(Method::POST, "/api/v1/directives", &t, Some(d)).await;
            assert_eq!(s, 202, "{d}");
            let did = d["id"].as_str().unwrap().to_string();
            sys.wait_count(&format!("select count(*) from task where directive_id = '{did}'"), 1).await;
            sqlx::query_scalar::<_, Option<String>>("select assignee_id from task where directive_id = $1")
                .bind(&did)
                .fetch_one(&sys.db)
                .await
                .unwrap()
        }
    };
    assert_eq!(assigned("owner").await.as_deref(), Some(a1.id.as_str()), "owner: the account's owner");
    assert_eq!(assigned("nearest").await.as_deref(), Some(a2.id.as_str()), "nearest: agent2's home is closer");
    assert_eq!(assigned("pool").await, None, "pool: nobody until claimed");
    // agent1 now holds 2 open tasks (owner, nearest went to a2: 1): least_loaded picks agent2? a1 has 1, a2 has 1 -> tie to the smaller id
    let open = |id: &str| {
        let q =
            format!("select count(*) from task where assignee_id = '{id}' and status in ('queued','delivered','accepted','checked_in')");
        let sys = &sys;
        async move { sys.count(&q).await }
    };
    assert_eq!((open(&a1.id).await, open(&a2.id).await), (1, 1));
    let smaller = if a1.id < a2.id { a1 } else { a2 };
    let larger = if a1.id < a2.id { a2 } else { a1 };
    assert_eq!(assigned("least_loaded").await.as_deref(), Some(smaller.id.as_str()), "tie: the smaller id");
    assert_eq!(assigned("least_loaded").await.as_deref(), Some(larger.id.as_str()), "then the one with fewer open tasks");
    sys.stop().await;
}
