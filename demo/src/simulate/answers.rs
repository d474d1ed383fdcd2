//! Answers that satisfy a task's report form: one plausible value per field type. Optional
//! fields are sometimes left out; photo fields are only filled (with a tiny uploaded PNG) when
//! required.

use rand::{seq::SliceRandom, Rng};
use serde_json::{json, Map, Value};

/// A 1×1 transparent PNG, uploaded when a form requires a photo.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63,
    0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
    0x82,
];

/// Keys of required photo fields in the form.
pub fn required_photos(form: &Value) -> Vec<String> {
    fields(form)
        .filter(|f| f["type"] == "photo" && f["required"].as_bool().unwrap_or(false))
        .filter_map(|f| f["key"].as_str().map(str::to_string))
        .collect()
}

fn fields(form: &Value) -> impl Iterator<Item = &Value> {
    form.as_array().into_iter().flatten()
}

/// Answers for every non-photo field (optional ones 80% of the time); `photo_ids` maps the
/// required photo fields, in order, to uploaded photo ids; `pos` answers `location` fields.
pub fn answers(form: &Value, photo_ids: &[String], pos: Option<(f64, f64)>, rng: &mut impl Rng) -> Value {
    let mut out = Map::new();
    let mut photos = photo_ids.iter();
    for f in fields(form) {
        let Some(key) = f["key"].as_str() else {
            continue;
        };
        let required = f["required"].as_bool().unwrap_or(false);
        if !required && rng.gen_bool(0.2) {
            continue;
        }
        let options: Vec<&Value> = f["options"].as_array().map(|o| o.iter().collect()).unwrap_or_default();
        let value = match f["type"].as_str().unwrap_or("") {
            "bool" => json!(rng.gen_bool(0.6)),
            "number" => json!(rng.gen_range(0..20)),
            "text" => {
                json!(["All good.", "Owner busy, follow up next week.", "Spoke with the manager."].choose(rng).copied().unwrap_or("ok"))
            }
            "choice" => match options.choose(rng) {
                Some(o) => (*o).clone(),
                None => continue,
            },
            "multi_choice" => {
                let n = rng.gen_range(1..=options.len().max(1)).min(options.len());
                Value::Array(options.choose_multiple(rng, n).map(|o| (*o).clone()).collect())
            }
            "location" => match pos {
                Some((lon, lat)) => json!({"lat": lat, "lon": lon}),
                None => continue,
            },
            "photo" => match (required, photos.next()) {
                (true, Some(id)) => json!(id),
                _ => continue,
            },
            _ => continue,
        };
        out.insert(key.to_string(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn answers_follow_the_form() {
        let form = json!([
            {"key": "signed", "label": "Signed?", "type": "bool", "required": true},
            {"key": "competitor", "type": "choice", "options": ["none", "A", "B"], "required": true},
            {"key": "n", "type": "number", "required": true},
            {"key": "shot", "type": "photo"},
            {"key": "proof", "type": "photo", "required": true}
        ]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = answers(&form, &["ph_1".to_string()], None, &mut rng);
        assert!(a["signed"].is_boolean());
        assert!(["none", "A", "B"].contains(&a["competitor"].as_str().unwrap()));
        assert!(a["n"].is_number());
        assert!(a.get("shot").is_none());
        assert_eq!(a["proof"], "ph_1");
        assert_eq!(required_photos(&form), vec!["proof"]);
    }
}
