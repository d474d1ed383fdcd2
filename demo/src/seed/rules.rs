//! Strategy rules, created as the strategist: a weekly cron re-visit, a daily onboarding sweep,
//! a report-triggered counter-visit (the closed loop the simulator makes fire), and a manual
//! rule to fire by hand. A rule whose name `GET /api/v1/rules` already lists is left alone.
//! Every rule is printed with its preview (`POST /api/v1/rules/{id}/preview`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::{json, Value};

use crate::api::Api;

/// The name the simulator's bursts and the README refer to.
pub const COUNTER_VISIT: &str = "Competitor subsidy: counter-visit";

fn demo_rules() -> Vec<Value> {
    let all = json!({"cities": [], "territories": [], "area": null});
    let target = |accounts: &str| {
        let mut t = all.clone();
        t["accounts"] = json!(accounts);
        t
    };
    vec![
        json!({
            "name": "Weekly re-visit: idle high-GMV restaurants",
            "trigger": {"kind": "cron", "cron": "0 0 9 * * Mon", "timezone": "Asia/Shanghai"},
            "target": target("category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14"),
            "task": {
                "title": "Re-visit {{account.name}}",
                "instructions": "Not visited for two weeks: check the menu listing, the delivery setup and the subsidy package.",
                "priority": "high", "due_in": "48h", "require_checkin": true,
                "form": [
                    {"key": "signed", "label": "Signed the subsidy package?", "type": "bool", "required": true},
                    {"key": "competitor", "label": "Competitor present", "type": "choice", "options": ["none", "A", "B"], "required": true},
                    {"key": "issues", "label": "Issues raised", "type": "multi_choice", "options": ["delivery", "commission", "menu", "payment"]},
                    {"key": "notes", "label": "Notes", "type": "text"}
                ]
            },
            "assignment": "owner"
        }),
        json!({
            "name": "Onboard new merchants",
            "trigger": {"kind": "cron", "cron": "0 30 10 * * *", "timezone": "Asia/Shanghai"},
            "target": target("is_new == true"),
            "task": {
                "title": "Onboard {{account.name}}",
                "instructions": "Set up the storefront, train the staff on the merchant app and take a storefront photo.",
                "priority": "normal", "due_in": "72h", "require_checkin": true,
                "form": [
                    {"key": "app_installed", "label": "Merchant app installed", "type": "bool", "required": true},
                    {"key": "staff_trained", "label": "Staff trained", "type": "number"},
                    {"key": "storefront", "label": "Storefront photo", "type": "photo"}
                ]
            },
            "assignment": "nearest"
        }),
        json!({
            "name": COUNTER_VISIT,
            "trigger": {"kind": "report", "filter": "kind == 'intel' && 'competitor_subsidy' in tags",
                        "threshold": 3, "window": "24h", "group_by": "territory"},
            "target": target("gmv_30d > 3000"),
            "task": {
                "title": "Counter-visit {{account.name}}",
                "instructions": "Agents report a competitor subsidy in this district: visit today, match the offer where it is worth it.",
                "priority": "urgent", "due_in": "24h", "require_checkin": true,
                "form": [
                    {"key": "approached", "label": "Approached by the competitor?", "type": "bool", "required": true},
                    {"key": "retained", "label": "Retained with our offer?", "type": "bool", "required": true},
                    {"key": "offer", "label": "Competitor's offer", "type": "choice", "options": ["commission cut", "cash subsidy", "free delivery", "other"]}
                ]
            },
            "assignment": "owner"
        }),
        json!({
            "name": "Low-rated merchants: quality check (manual)",
            "trigger": {"kind": "manual"},
            "target": target("rating < 3.3"),
            "task": {
                "title": "Quality check at {{account.name}}",
                "instructions": "Find out what hurts the rating and sign them up for the service-quality programme.",
                "priority": "normal", "due_in": "7d", "require_checkin": false,
                "form": [
                    {"key": "joined", "label": "Joined the programme", "type": "bool", "required": true},
                    {"key": "issue", "label": "Main issue", "type": "choice", "options": ["delivery", "quality", "price", "other"], "required": true}
                ]
            },
            "assignment": "least_loaded"
        }),
    ]
}

pub async fn seed_rules(api: &Api) -> Result<()> {
    let existing = api.get("/api/v1/rules?limit=500").await?;
    if !existing.status.is_success() {
        eprintln!("warning: GET /api/v1/rules: {}; no rules seeded", existing.describe());
        return Ok(());
    }
    let have: Vec<Value> = existing.body["items"].as_array().cloned().unwrap_or_default();
    // one key per run: retries within the run replay, a later run (after a delete) creates anew
    let run = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    println!();
    println!("Strategy rules (as {}):", api.user["username"].as_str().unwrap_or("?"));
    for (i, body) in demo_rules().into_iter().enumerate() {
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let rule = match have.iter().find(|r| r["name"].as_str() == Some(&name)) {
            Some(r) => {
                eprintln!("seed: rule {name:?} exists already ({})", plain(&r["id"]));
                r.clone()
            }
            None => {
                let r = api.post("/api/v1/rules", &body, &format!("seed-rule-{i}-{run}")).await?;
                if !r.status.is_success() {
                    eprintln!("warning: rule {name:?} refused: {}", r.describe());
                    continue;
                }
                eprintln!("seed: rule {name:?} created: {}", plain(&r.body["id"]));
                r.body
            }
        };
        println!("{}", describe(&rule));
        let id = plain(&rule["id"]);
        match api.post(&format!("/api/v1/rules/{id}/preview"), &json!({}), &format!("seed-preview-{id}-{run}")).await {
            Ok(r) if r.status.is_success() => {
                print!("{}", preview(&r.body));
                if rule["trigger"]["kind"].as_str() == Some("report") {
                    println!("      (each firing is narrowed to the one district the reports came from)");
                }
            }
            Ok(r) => println!("    preview: {}", r.describe()),
            Err(e) => println!("    preview: {e:#}"),
        }
    }
    Ok(())
}

/// `rule_…  v1  enabled  "name"` and its trigger on the next line.
fn describe(rule: &Value) -> String {
    let t = &rule["trigger"];
    let trigger = match t["kind"].as_str() {
        Some("cron") => format!(
            "cron `{}` ({}), next {}",
            plain(&t["cron"]),
            plain(&t["timezone"]),
            rule["next_occurrences"].as_array().and_then(|a| a.first()).map(plain).unwrap_or_else(|| "-".into())
        ),
        Some("report") => format!(
            "{} reports matching `{}` within {} per {}",
            plain(&t["threshold"]),
            plain(&t["filter"]),
            plain(&t["window"]),
            plain(&t["group_by"])
        ),
        Some(k) => k.to_string(),
        None => "?".into(),
    };
    format!(
        "  {:?}  [{} v{}{}]\n    trigger: {trigger}\n    accounts: {}; assignment {}, priority {}, due in {}",
        plain(&rule["name"]),
        plain(&rule["id"]),
        plain(&rule["version"]),
        if rule["enabled"].as_bool() == Some(false) { ", disabled" } else { "" },
        plain(&rule["target"]["accounts"]),
        plain(&rule["assignment"]),
        plain(&rule["task"]["priority"]),
        plain(&rule["task"]["due_in"]),
    )
}

/// `preview: N tasks (K skipped)` and one line per city.
fn preview(p: &Value) -> String {
    let skipped = match &p["skipped"] {
        Value::Array(a) => a.len() as u64,
        v => v.as_u64().unwrap_or(0),
    };
    let mut s = format!(
        "    preview: {} tasks if fired now{}\n",
        plain(&p["tasks"]),
        if skipped > 0 { format!(" ({skipped} skipped)") } else { String::new() }
    );
    for c in p["by_city"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "      {:<10} {:>5} tasks  {:>3} agents  {:>3} districts  {:>4} to the pool\n",
            plain(&c["city_id"]),
            plain(&c["tasks"]),
            plain(&c["agents"]),
            plain(&c["territories"]),
            plain(&c["pool"])
        ));
    }
    s
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_prints_a_line_per_city() {
        let p = json!({"tasks": 12, "by_city": [{"city_id": "shanghai", "tasks": 12, "agents": 5, "territories": 3, "pool": 1}],
                       "load": [], "skipped": 0, "sample": []});
        let out = preview(&p);
        assert!(out.contains("12 tasks if fired now"), "{out}");
        assert!(out.contains("shanghai"), "{out}");
    }

    #[test]
    fn every_rule_has_the_fields_the_api_wants() {
        for r in demo_rules() {
            for k in ["name", "trigger", "target", "task", "assignment"] {
                assert!(!r[k].is_null(), "{k} in {r}");
            }
        }
    }
}
