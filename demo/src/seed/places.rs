//! City, teams and territories of one city. A territory set refused by the server (422, e.g.
//! a self-intersecting district) is retried without the offending district, with a warning.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::SeedArgs;
use crate::api::Api;
use crate::cities::{City, TIMEZONE};
use crate::geo_prep;
use crate::sampling::{self, District};

/// What the rest of the seed needs to know about a seeded city.
pub struct Place {
    pub team_ids: Vec<String>,
    /// Districts the server accepted, each with the team owning it.
    pub districts: Vec<(District, String)>,
}

pub async fn seed_city(api: &Api, city: &City, args: &SeedArgs) -> Result<Place> {
    let (fc, districts) = sampling::load_city(&args.geo_dir, city.id)?;
    put_city(api, city, &districts).await?;

    let team_ids: Vec<String> = (1..=args.teams_per_city).map(|i| format!("{}-t{i}", city.id)).collect();
    for (i, id) in team_ids.iter().enumerate() {
        let body = json!({"id": id, "city_id": city.id, "name": format!("{} Team {}", city.name_en, i + 1)});
        let r = api.post("/api/v1/teams", &body, &format!("seed-team-{id}")).await?;
        if !(r.status.is_success() || r.status.as_u16() == 409) {
            bail!("team {id}: {}", r.describe());
        }
    }

    // Round-robin ownership over the teams, in file order.
    let mut features: Vec<(Value, District, String)> = fc["features"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .zip(districts)
        .enumerate()
        .map(|(i, (mut f, d))| {
            let team = team_ids[i % team_ids.len()].clone();
            f["properties"] = json!({"id": d.id, "name": d.name, "team_id": team});
            (f, d, team)
        })
        .collect();

    loop {
        let body = json!({"type": "FeatureCollection",
            "features": features.iter().map(|(f, _, _)| f.clone()).collect::<Vec<_>>()});
        let r = api.put(&format!("/api/v1/cities/{}/territories", city.id), &body).await?;
        if r.status.is_success() {
            eprintln!("seed:   {} territories, {} teams", features.len(), team_ids.len());
            break;
        }
        match (r.status.as_u16(), rejected_feature(&r.body)) {
            (422, Some(i)) if i < features.len() && features.len() > 1 => {
                eprintln!("warning: {}: territory {} refused ({}); skipped", city.id, features[i].1.id, r.describe());
                features.remove(i);
            }
            _ => bail!("territories of {}: {}", city.id, r.describe()),
        }
    }
    let districts = features.into_iter().map(|(_, d, t)| (d, t)).collect();
    Ok(Place { team_ids, districts })
}

/// The largest boundary JSON sent (actix-web's default JSON body limit is 32 KiB).
const MAX_BOUNDARY_BYTES: usize = 30_000;

/// PUT the city with the (simplified) union of its districts as boundary; without it if that
/// is refused.
async fn put_city(api: &Api, city: &City, districts: &[District]) -> Result<()> {
    let path = format!("/api/v1/cities/{}", city.id);
    let mut body = json!({"name_zh": city.name_zh, "name_en": city.name_en, "timezone": TIMEZONE});
    if let Some(boundary) = geo_prep::outline(districts.iter().map(|d| &d.shape), MAX_BOUNDARY_BYTES) {
        body["boundary"] = boundary;
    }
    let r = api.put(&path, &body).await?;
    if r.status.is_success() || body.get("boundary").is_none() {
        return r.ok(&format!("city {}", city.id)).map(|_| ());
    }
    eprintln!("warning: {}: boundary refused ({}); city sent without it", city.id, r.describe());
    body.as_object_mut().map(|o| o.remove("boundary"));
    api.put(&path, &body).await?.ok(&format!("city {}", city.id)).map(|_| ())
}

/// The index of the feature a 422 names, from `field` (`features[3].geometry`,
/// `features.3`, `/features/3`) or, failing that, the message.
fn rejected_feature(body: &Value) -> Option<usize> {
    let err = &body["error"];
    [err["field"].as_str(), err["message"].as_str()].into_iter().flatten().find_map(|s| {
        let rest = &s[s.find("features")? + "features".len()..];
        let digits: String = rest.trim_start_matches(|c: char| !c.is_ascii_digit()).chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refused_feature_is_found_in_the_error_field() {
        let body = json!({"error": {"code": "invalid_geometry", "message": "self-intersection", "field": "features[7].geometry"}});
        assert_eq!(rejected_feature(&body), Some(7));
        let body = json!({"error": {"code": "x", "message": "bad ring in /features/12/geometry", "field": null}});
        assert_eq!(rejected_feature(&body), Some(12));
        assert_eq!(rejected_feature(&json!({"error": {"field": "name"}})), None);
    }
}
