//! Domain values, parsed at the edge and known good past it. No I/O here.

mod directive;
mod duration;
mod form;
mod ids;
mod rule;
mod task;

pub use directive::{Assignment, DirectiveIn, PLACEHOLDERS, Priority, Target, TaskTemplate, render, unknown_placeholder, validate_order};
pub use duration::Duration;
pub use form::{FieldType, FormField, validate_answers, validate_form};
pub use ids::new_id;
pub use rule::{GroupBy, RuleIn, Trigger};
pub use task::TaskStatus;

use serde::{Deserialize, Serialize};

/// WGS 84 degrees.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    /// Checks ranges; `field` names the JSON path in the error.
    pub fn check(self, field: &str) -> Result<LatLon, crate::ApiError> {
        check_lat_lon(self.lat, self.lon, field)?;
        Ok(self)
    }
}

pub fn check_lat_lon(lat: f64, lon: f64, field: &str) -> Result<(), crate::ApiError> {
    let dot = if field.is_empty() { String::new() } else { format!("{field}.") };
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(crate::ApiError::unprocessable("out_of_range", format!("{dot}lat"), "lat must be within -90..90"));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(crate::ApiError::unprocessable("out_of_range", format!("{dot}lon"), "lon must be within -180..180"));
    }
    Ok(())
}

/// A slug-like identifier chosen by the client (city, team, territory, account ids).
pub fn check_slug(value: &str, field: &str) -> Result<(), crate::ApiError> {
    let ok =
        !value.is_empty() && value.len() <= 128 && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok { Ok(()) } else { Err(crate::ApiError::invalid(field, "must be 1-128 characters of A-Z a-z 0-9 - _ . :")) }
}
