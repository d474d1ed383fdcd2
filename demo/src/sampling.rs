//! Districts loaded from the decoded GeoJSON, and uniform random points inside them
//! (rejection sampling over the bounding box with `geo` point-in-polygon).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use geo::{BoundingRect, Contains, MultiPolygon, Point, Rect};
use rand::Rng;
use serde_json::Value;

use crate::echarts;
use crate::geo_prep;

/// One district of a city, ready for sampling.
#[derive(Debug, Clone)]
pub struct District {
    pub id: String,
    pub name: String,
    pub shape: MultiPolygon<f64>,
    bbox: Rect<f64>,
}

impl District {
    /// A uniform random `(lon, lat)` inside the district (falls back to a vertex after
    /// 10,000 misses, which only a sliver-shaped district could cause).
    pub fn random_point(&self, rng: &mut impl Rng) -> (f64, f64) {
        let (min, max) = (self.bbox.min(), self.bbox.max());
        for _ in 0..10_000 {
            let p = Point::new(rng.gen_range(min.x..=max.x), rng.gen_range(min.y..=max.y));
            if self.shape.contains(&p) {
                return (round6(p.x()), round6(p.y()));
            }
        }
        let c = self.shape.0[0].exterior().0[0];
        (c.x, c.y)
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Read `<geo_dir>/<city_id>.json` as written by `decode-geo`: the raw collection (to send as
/// territories) and its districts (to sample from), in the same order.
pub fn load_city(geo_dir: &Path, city_id: &str) -> Result<(Value, Vec<District>)> {
    let path = geo_dir.join(format!("{city_id}.json"));
    let fc: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {} (run scripts/fetch-geo.sh first)", path.display()))?,
    )?;
    let features = fc["features"].as_array().ok_or_else(|| anyhow!("{}: no features", path.display()))?;
    let districts = features
        .iter()
        .map(|f| {
            let shape = geo_prep::to_geo(&echarts::plain_polygons(&f["geometry"])?);
            let bbox = shape.bounding_rect().ok_or_else(|| anyhow!("empty district geometry"))?;
            Ok(District {
                id: f["properties"]["id"].as_str().unwrap_or_default().to_string(),
                name: f["properties"]["name"].as_str().unwrap_or_default().to_string(),
                shape,
                bbox,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((fc, districts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sampled_points_fall_inside_the_district() {
        let poly = vec![vec![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]];
        let shape = geo_prep::to_geo(&[poly]);
        let d = District { id: "x".into(), name: "x".into(), bbox: shape.bounding_rect().unwrap(), shape };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let (x, y) = d.random_point(&mut rng);
            assert!(x + y <= 2.0 + 1e-6 && x >= 0.0 && y >= 0.0, "({x},{y})");
        }
    }
}
