//! Merchants of one city: a district is picked uniformly (so dense downtown districts get as
//! many as large rural ones), a point uniformly inside it, and an owner among the agents of
//! the team owning that district. Ids are deterministic (`shanghai-m00001`).
//!
//! Attributes: `category`, `gmv_30d`, `days_since_visit`, `rating`, and `is_new` (about 5% of
//! the merchants, the ones the onboarding rule targets). `is_new` is derived from a hash of the
//! id, not drawn from the city's random stream, so the other attributes stay what they were.

use anyhow::{bail, Result};
use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use serde_json::{json, Value};

use super::people::Agent;
use super::places::Place;
use super::SeedArgs;
use crate::api::Api;
use crate::cities::City;

const CATEGORIES: &[(&str, &str)] =
    &[("restaurant", "餐厅"), ("grocery", "便利店"), ("pharmacy", "药房"), ("cafe", "咖啡馆"), ("bakery", "面包房")];
const BRANDS: &[&str] = &["老王", "小李", "金鼎", "福满", "鸿运", "好味", "一品", "新潮", "悦来", "德兴", "和记", "春风"];

pub async fn seed_accounts(api: &Api, city: &City, place: &Place, agents: &[Agent], args: &SeedArgs, rng: &mut StdRng) -> Result<()> {
    let accounts: Vec<Value> = (1..=args.accounts_per_city).map(|n| account(city, place, agents, n, rng)).collect();
    let batches = accounts.chunks(args.batch_size.max(1)).count();
    for (b, batch) in accounts.chunks(args.batch_size.max(1)).enumerate() {
        let body = Value::Array(batch.to_vec());
        // `v2`: the bodies gained `is_new`; a key of an older run would answer 409
        let key = format!("seed-accounts-v2-{}-{}-{}-{b}", city.id, place.districts.len(), args.batch_size);
        let r = api.post("/api/v1/accounts/import", &body, &key).await?;
        if !r.status.is_success() {
            bail!("accounts of {} batch {b}: {}", city.id, r.describe());
        }
        let rejected = r.body["rejected"].as_array().cloned().unwrap_or_default();
        eprintln!("seed:   accounts batch {}/{batches}: imported {}, rejected {}", b + 1, r.body["imported"], rejected.len());
        for rej in rejected.iter().take(3) {
            eprintln!("seed:     rejected #{}: {}", rej["index"], rej["error"]);
        }
    }
    Ok(())
}

fn account(city: &City, place: &Place, agents: &[Agent], n: usize, rng: &mut StdRng) -> Value {
    let (district, team) = &place.districts[rng.gen_range(0..place.districts.len())];
    let (lon, lat) = district.random_point(rng);
    let team_agents: Vec<&Agent> = agents.iter().filter(|a| &a.team_id == team).collect();
    let owner = team_agents.choose(rng).map(|a| a.id.clone());
    let (category, label) = CATEGORIES[rng.gen_range(0..CATEGORIES.len())];
    let brand = BRANDS[rng.gen_range(0..BRANDS.len())];
    let u: f64 = rng.gen();
    let gmv = (200.0 + 12_000.0 * u * u).round();
    json!({
        "id": format!("{}-m{n:05}", city.id),
        "name": format!("{brand}{label}({}{n}号)", district.name),
        "lat": lat,
        "lon": lon,
        "owner_id": owner,
        "attributes": {
            "category": category,
            "gmv_30d": gmv,
            "days_since_visit": rng.gen_range(0..60),
            "rating": (rng.gen_range(30..=50) as f64) / 10.0,
            "is_new": is_new(city.id, n),
        },
    })
}

/// About one merchant in twenty is new (not yet onboarded); stable per id.
fn is_new(city_id: &str, n: usize) -> bool {
    super::seeded_rng(&format!("{city_id}-m{n:05}-is-new")).gen_bool(0.05)
}

#[cfg(test)]
mod tests {
    #[test]
    fn about_five_percent_are_new() {
        let n = (1..=3000).filter(|&n| super::is_new("shanghai", n)).count();
        assert!((90..=210).contains(&n), "{n}");
    }
}
