//! `decode-geo`: turn the npm package's compressed district files into plain GeoJSON
//! FeatureCollections, one per demo city, at `<out-dir>/<city_id>.json`.
//!
//! Each feature gets properties `{"id": "<city>-<adcode>", "name": "<Chinese name>"}`.
//! Polygons that `geo` finds invalid (self-intersections from the 1/1024 degree quantisation)
//! are repaired with `MakeValid`; a district that cannot be repaired is kept as decoded with a
//! warning, and the seed step deals with a server refusal.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use geo::orient::{Direction, Orient};
use geo::{unary_union, Area, LineString, MakeValid, MultiPolygon, Simplify, Validation};
use serde_json::{json, Value};

use crate::cities::City;
use crate::echarts::{self, District, Polygon};

/// Decode every selected city whose output does not exist yet (or all with `force`).
pub fn run(cities: &[City], src_dir: &Path, out_dir: &Path, force: bool) -> Result<()> {
    std::fs::create_dir_all(out_dir)?;
    for city in cities {
        let out = out_dir.join(format!("{}.json", city.id));
        if out.exists() && !force {
            eprintln!("geo: {} cached at {}", city.id, out.display());
            continue;
        }
        let src: PathBuf = src_dir.join(format!("{}.geojson", city.source_file));
        let raw: Value = serde_json::from_slice(&std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?)
            .with_context(|| format!("parsing {}", src.display()))?;
        let districts = echarts::decode_collection(&raw)?;
        let fc = feature_collection(city, districts);
        let n = fc["features"].as_array().map_or(0, Vec::len);
        std::fs::write(&out, serde_json::to_vec(&fc)?)?;
        eprintln!("geo: {} -> {} ({n} districts)", city.id, out.display());
    }
    Ok(())
}

/// Build the plain FeatureCollection for one city, repairing invalid geometry.
pub fn feature_collection(city: &City, districts: Vec<District>) -> Value {
    let features: Vec<Value> = districts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let id = match &d.source_id {
                Some(code) if code.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    format!("{}-{code}", city.id)
                }
                _ => format!("{}-d{:02}", city.id, i + 1),
            };
            let polygons = repaired(&id, d.polygons);
            json!({
                "type": "Feature",
                "properties": {"id": id, "name": d.name},
                "geometry": echarts::geometry_json(&polygons),
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// Return the polygons (re-oriented) when valid, else `geo`'s repair of them (if that is valid).
pub fn repaired(id: &str, polygons: Vec<Polygon>) -> Vec<Polygon> {
    let mp = to_geo(&polygons);
    if mp.is_valid() {
        return from_geo(&mp);
    }
    match mp.make_valid().map(drop_slivers) {
        Ok(fixed) if fixed.is_valid() && !fixed.0.is_empty() => {
            eprintln!("geo: {id}: invalid polygon repaired ({} part(s))", fixed.0.len());
            from_geo(&fixed)
        }
        _ => {
            eprintln!("warning: {id}: invalid polygon could not be repaired; kept as decoded");
            polygons
        }
    }
}

/// Parts smaller than this (in square degrees, about 0.02 km²) left by a repair are the
/// loops and spikes of a quantised boundary, not land: they are dropped.
const MIN_PART_AREA: f64 = 2e-6;

/// Drop the sliver parts a repair leaves, unless nothing else is left.
fn drop_slivers(mp: MultiPolygon<f64>) -> MultiPolygon<f64> {
    let kept: Vec<_> = mp.0.iter().filter(|p| p.unsigned_area() >= MIN_PART_AREA).cloned().collect();
    if kept.is_empty() {
        mp
    } else {
        MultiPolygon::new(kept)
    }
}

/// Parts and holes of a city outline smaller than this (square degrees, about 1 km²) go.
const MIN_OUTLINE_AREA: f64 = 1e-4;

/// The city's outline for `PUT /cities/{id}`: the union of its districts without specks or
/// small holes, simplified (Douglas–Peucker, coordinates rounded to ~1 m) until its JSON fits
/// in `max_bytes`, since JSON bodies are often capped. `None` when no valid version fits.
pub fn outline<'a>(shapes: impl IntoIterator<Item = &'a MultiPolygon<f64>>, max_bytes: usize) -> Option<Value> {
    let union = unary_union(shapes);
    let parts = union.0.into_iter().filter(|p| p.unsigned_area() >= MIN_OUTLINE_AREA).map(|p| {
        let (ext, holes) = p.into_inner();
        let holes = holes.into_iter().filter(|h| geo::Polygon::new(h.clone(), vec![]).unsigned_area() >= MIN_OUTLINE_AREA);
        geo::Polygon::new(ext, holes.collect())
    });
    let union = MultiPolygon::new(parts.collect());
    [0.0, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032].into_iter().find_map(|eps| {
        let rings: Vec<Polygon> = from_geo(&union.simplify(eps))
            .into_iter()
            .map(|p| p.into_iter().map(|r| r.into_iter().map(|[x, y]| [round5(x), round5(y)]).collect()).collect())
            .collect();
        let json = echarts::geometry_json(&rings);
        (to_geo(&rings).is_valid() && !rings.is_empty() && json.to_string().len() <= max_bytes).then_some(json)
    })
}

fn round5(v: f64) -> f64 {
    (v * 1e5).round() / 1e5
}

/// Convert decoded rings to a `geo` MultiPolygon, oriented as RFC 7946 wants (exteriors
/// counter-clockwise, holes clockwise): the source mixes both, and unions need one winding.
pub fn to_geo(polygons: &[Polygon]) -> MultiPolygon<f64> {
    let ring = |r: &Vec<[f64; 2]>| LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    MultiPolygon::new(polygons.iter().map(|p| geo::Polygon::new(ring(&p[0]), p[1..].iter().map(ring).collect())).collect())
        .orient(Direction::Default)
}

/// Convert a `geo` MultiPolygon back to closed `[lon, lat]` rings.
pub fn from_geo(mp: &MultiPolygon<f64>) -> Vec<Polygon> {
    let ring = |ls: &LineString<f64>| ls.coords().map(|c| [c.x, c.y]).collect::<Vec<_>>();
    mp.0.iter()
        .map(|p| std::iter::once(ring(p.exterior())).chain(p.interiors().iter().map(ring)).collect())
        .filter(|p: &Polygon| p[0].len() >= 4)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bowtie_is_repaired_into_valid_parts() {
        let bowtie = vec![vec![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]];
        let fixed = repaired("t", vec![bowtie]);
        assert!(to_geo(&fixed).is_valid());
        assert_eq!(fixed.len(), 2);
    }

    #[test]
    fn slivers_left_by_a_repair_are_dropped() {
        let big = vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]];
        let tiny = vec![vec![[2.0, 2.0], [2.001, 2.0], [2.0, 2.001], [2.0, 2.0]]];
        assert_eq!(drop_slivers(to_geo(&[big, tiny])).0.len(), 1);
    }

    #[test]
    fn districts_of_either_winding_union_into_one_area() {
        let ccw = vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]];
        let cw = vec![vec![[1.0, 0.0], [1.0, 1.0], [2.0, 1.0], [2.0, 0.0], [1.0, 0.0]]];
        let (a, b) = (to_geo(&[ccw]), to_geo(&[cw]));
        let union = geo::unary_union([&a, &b]);
        assert!((union.unsigned_area() - 2.0).abs() < 1e-9, "{}", union.unsigned_area());
    }

    #[test]
    fn an_outline_is_simplified_until_it_fits() {
        // A wiggly 1°×1° square: 400 points along its bottom edge.
        let mut ring: Vec<[f64; 2]> = (0..=400).map(|i| [i as f64 / 400.0, if i % 2 == 0 { 0.0 } else { 0.0005 }]).collect();
        ring.extend([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]);
        let shape = to_geo(&[vec![ring]]);
        let full = outline([&shape], usize::MAX).unwrap().to_string().len();
        let small = outline([&shape], 2_000).unwrap();
        assert!(small.to_string().len() <= 2_000 && full > 2_000, "{full}");
        assert_eq!(small["type"], "Polygon");
    }

    #[test]
    fn a_valid_square_is_kept_as_is() {
        let sq = vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]];
        assert_eq!(repaired("t", vec![sq.clone()]), vec![sq]);
    }
}
