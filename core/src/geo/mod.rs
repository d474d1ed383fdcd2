//! Geography: GeoJSON boundaries parsed and validated into `geo` types, the territory index
//! (an R-tree of bounding boxes, then exact point-in-polygon), and check-in distances.
//!
//! A point on an edge shared by two territories touches both; the tie is broken by the smaller
//! territory id so the answer never depends on load order.

use geo::{BoundingRect, Distance, Haversine, Intersects, MultiPolygon, Point, Polygon, Validation};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde_json::Value;

use crate::ApiError;

/// Great-circle distance in metres.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    // (lat, lon) in, geo wants (x = lon, y = lat)
    Haversine.distance(Point::new(a.1, a.0), Point::new(b.1, b.0))
}

/// Parses a GeoJSON Polygon or MultiPolygon geometry and checks it: closed rings of at least four
/// positions, coordinates in range, no self-intersections (`geo`'s OGC validation). Errors name
/// `path` and answer 422 `invalid_geometry`.
pub fn parse_area(value: &Value, path: &str) -> Result<MultiPolygon<f64>, ApiError> {
    let bad = |msg: String| ApiError::unprocessable("invalid_geometry", path, msg);
    let kind = value.get("type").and_then(Value::as_str).ok_or_else(|| bad("geometry needs a \"type\"".into()))?;
    let coords = value.get("coordinates").ok_or_else(|| bad("geometry needs \"coordinates\"".into()))?;
    let polygons: Vec<&Value> = match kind {
        "Polygon" => vec![coords],
        "MultiPolygon" => coords.as_array().ok_or_else(|| bad("MultiPolygon coordinates must be an array".into()))?.iter().collect(),
        other => return Err(bad(format!("geometry type must be Polygon or MultiPolygon, not {other}"))),
    };
    if polygons.is_empty() {
        return Err(bad("geometry has no polygons".into()));
    }
    let mut out = Vec::with_capacity(polygons.len());
    for (pi, poly) in polygons.into_iter().enumerate() {
        let rings =
            poly.as_array().filter(|r| !r.is_empty()).ok_or_else(|| bad(format!("polygon {pi} must be a non-empty array of rings")))?;
        let mut parsed = Vec::with_capacity(rings.len());
        for (ri, ring) in rings.iter().enumerate() {
            let positions = ring.as_array().ok_or_else(|| bad(format!("polygon {pi} ring {ri} must be an array of positions")))?;
            let mut pts = Vec::with_capacity(positions.len());
            for pos in positions {
                let xy = pos.as_array().filter(|a| a.len() >= 2);
                let (lon, lat) = match xy.map(|a| (a[0].as_f64(), a[1].as_f64())) {
                    Some((Some(x), Some(y))) => (x, y),
                    _ => return Err(bad(format!("polygon {pi} ring {ri}: a position must be [lon, lat]"))),
                };
                if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
                    return Err(ApiError::unprocessable(
                        "out_of_range",
                        path,
                        format!("polygon {pi} ring {ri}: [{lon}, {lat}] is outside WGS 84 ranges"),
                    ));
                }
                pts.push(geo::coord! { x: lon, y: lat });
            }
            if pts.len() < 4 {
                return Err(bad(format!("polygon {pi} ring {ri} has fewer than 4 positions")));
            }
            if pts.first() != pts.last() {
                return Err(bad(format!("polygon {pi} ring {ri} is not closed (first and last positions differ)")));
            }
            parsed.push(geo::LineString::new(pts));
        }
        let exterior = parsed.remove(0);
        out.push(Polygon::new(exterior, parsed));
    }
    let mp = MultiPolygon::new(out);
    if let Err(problem) = mp.check_validation() {
        return Err(bad(format!("invalid polygon: {problem}")));
    }
    Ok(mp)
}

/// A geometry stored after [`parse_area`] accepted it: parsed again without the (costly) OGC
/// validation; `None` if it no longer parses.
pub fn parse_stored(value: &Value) -> Option<MultiPolygon<f64>> {
    let polygon = |rings: &Value| -> Option<Polygon<f64>> {
        let mut parsed = rings
            .as_array()?
            .iter()
            .map(|ring| {
                let pts = ring
                    .as_array()?
                    .iter()
                    .map(|p| Some(geo::coord! { x: p.get(0)?.as_f64()?, y: p.get(1)?.as_f64()? }))
                    .collect::<Option<Vec<_>>>()?;
                Some(geo::LineString::new(pts))
            })
            .collect::<Option<Vec<_>>>()?;
        if parsed.is_empty() {
            return None;
        }
        let exterior = parsed.remove(0);
        Some(Polygon::new(exterior, parsed))
    };
    let coords = value.get("coordinates")?;
    match value.get("type")?.as_str()? {
        "Polygon" => Some(MultiPolygon::new(vec![polygon(coords)?])),
        "MultiPolygon" => Some(MultiPolygon::new(coords.as_array()?.iter().map(polygon).collect::<Option<Vec<_>>>()?)),
        _ => None,
    }
}

/// One territory in the index.
#[derive(Debug, Clone)]
pub struct Zone {
    pub id: String,
    pub city_id: String,
    pub team_id: Option<String>,
    pub shape: MultiPolygon<f64>,
}

/// Point-in-territory lookup: R-tree over bounding boxes, exact test on the candidates.
pub struct TerritoryIndex {
    zones: Vec<Zone>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

impl TerritoryIndex {
    pub fn new(zones: Vec<Zone>) -> TerritoryIndex {
        let boxes = zones
            .iter()
            .enumerate()
            .filter_map(|(i, z)| {
                let r = z.shape.bounding_rect()?;
                Some(GeomWithData::new(Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]), i))
            })
            .collect();
        TerritoryIndex { zones, tree: RTree::bulk_load(boxes) }
    }

    /// The territory holding (lat, lon), if any.
    pub fn locate(&self, lat: f64, lon: f64) -> Option<&Zone> {
        let p = Point::new(lon, lat);
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point([lon, lat]))
            .map(|g| &self.zones[g.data])
            .filter(|z| z.shape.intersects(&p))
            .min_by(|a, b| a.id.cmp(&b.id))
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
        json!({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})
    }

    #[test]
    fn locates_points_and_breaks_edge_ties_by_id() {
        let z = |id: &str, g: Value| Zone { id: id.into(), city_id: "c".into(), team_id: None, shape: parse_area(&g, "g").unwrap() };
        let idx = TerritoryIndex::new(vec![z("b", square(121.0, 31.0, 121.5, 31.5)), z("a", square(121.5, 31.0, 122.0, 31.5))]);
        assert_eq!(idx.locate(31.2, 121.2).unwrap().id, "b");
        assert_eq!(idx.locate(31.2, 121.7).unwrap().id, "a");
        assert_eq!(idx.locate(31.2, 121.5).unwrap().id, "a", "shared edge goes to the smaller id");
        assert!(idx.locate(30.0, 121.2).is_none());
    }

    #[test]
    fn refuses_unclosed_self_intersecting_and_out_of_range() {
        let unclosed = json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]});
        assert!(parse_area(&unclosed, "g").unwrap_err().message.contains("not closed"));
        let bowtie = json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]});
        assert!(parse_area(&bowtie, "g").unwrap_err().message.contains("invalid polygon"));
        assert_eq!(parse_area(&square(0.0, 0.0, 200.0, 1.0), "g").unwrap_err().code, "out_of_range");
        assert_eq!(parse_area(&json!({"type": "Point", "coordinates": [0, 0]}), "g").unwrap_err().code, "invalid_geometry");
    }

    #[test]
    fn stored_geometries_parse_back_to_the_same_shape() {
        let g = square(121.0, 31.0, 121.5, 31.5);
        assert_eq!(parse_stored(&g).unwrap(), parse_area(&g, "g").unwrap());
        assert!(parse_stored(&json!({"type": "Point", "coordinates": [0, 0]})).is_none());
    }

    #[test]
    fn distance_is_metres() {
        let d = distance_m((31.2304, 121.4737), (31.2314, 121.4737));
        assert!((d - 111.2).abs() < 1.0, "{d}");
    }
}
