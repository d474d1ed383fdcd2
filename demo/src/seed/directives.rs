//! A few manual directives so the dashboard has something to show. A directive whose name is
//! already listed by `GET /api/v1/directives` is not issued again.

use anyhow::Result;
use serde_json::{json, Value};

use crate::api::Api;
use crate::cities::City;

fn demo_directives(cities: &[&str]) -> Vec<Value> {
    let pick = |wanted: &[&'static str]| -> Vec<&'static str> { wanted.iter().copied().filter(|c| cities.contains(c)).collect() };
    vec![
        json!({
            "name": "Q4 subsidy push: high-GMV restaurants",
            "target": {"cities": pick(&["shanghai", "hangzhou"]), "territories": [], "area": null,
                       "accounts": "category == 'restaurant' && gmv_30d > 5000"},
            "task": {
                "title": "Visit {{account.name}}",
                "instructions": "Offer the Q4 subsidy package and note any competitor presence.",
                "priority": "high", "due_in": "48h", "require_checkin": true,
                "form": [
                    {"key": "signed", "label": "Signed?", "type": "bool", "required": true},
                    {"key": "competitor", "label": "Competitor present", "type": "choice", "options": ["none", "A", "B"]}
                ]
            },
            "assignment": "owner"
        }),
        json!({
            "name": "Pharmacy compliance check",
            "target": {"cities": pick(&["beijing", "guangzhou", "shenzhen"]), "territories": [], "area": null,
                       "accounts": "category == 'pharmacy' && days_since_visit > 30"},
            "task": {
                "title": "Compliance check at {{account.name}}",
                "instructions": "Check the licence display and the cold-chain shelf.",
                "priority": "normal", "due_in": "72h", "require_checkin": true,
                "form": [
                    {"key": "licence_ok", "label": "Licence displayed", "type": "bool", "required": true},
                    {"key": "fridges", "label": "Working fridges", "type": "number"},
                    {"key": "notes", "label": "Notes", "type": "text"}
                ]
            },
            "assignment": "nearest"
        }),
        json!({
            "name": "Low-rated cafe follow-up",
            "target": {"cities": pick(&["chengdu", "wuhan", "nanjing", "xian", "chongqing"]), "territories": [],
                       "area": null, "accounts": "category == 'cafe' && rating < 3.5"},
            "task": {
                "title": "Call on {{account.name}}",
                "instructions": "Ask what hurt their rating and offer the service-quality programme.",
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

pub async fn seed_directives(api: &Api, selected: &[City]) -> Result<()> {
    let ids: Vec<&str> = selected.iter().map(|c| c.id).collect();
    let existing = api.get("/api/v1/directives?limit=500").await?;
    let names: Vec<String> =
        existing.body["items"].as_array().into_iter().flatten().filter_map(|d| d["name"].as_str().map(str::to_string)).collect();
    for (i, d) in demo_directives(&ids).into_iter().enumerate() {
        let name = d["name"].as_str().unwrap_or_default().to_string();
        if d["target"]["cities"].as_array().is_none_or(Vec::is_empty) {
            continue; // none of its cities is being seeded
        }
        if names.contains(&name) {
            eprintln!("seed: directive {name:?} exists already");
            continue;
        }
        let r = api.post("/api/v1/directives", &d, &format!("seed-directive-{i}")).await?;
        if r.status.is_success() {
            eprintln!("seed: directive {name:?} issued: {}", r.body["id"]);
        } else {
            eprintln!("warning: directive {name:?} refused: {}", r.describe());
        }
    }
    Ok(())
}
