//! What HQ orders: a target (where, which accounts), a task template and an assignment policy.

use serde::{Deserialize, Serialize};

use super::{Duration, FormField, validate_form};
use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// The account's owner, else the team pool.
    Owner,
    /// The team's agent whose home is nearest the account.
    Nearest,
    /// The team's agent with the fewest open tasks.
    LeastLoaded,
    /// Any agent of the team may claim it.
    Pool,
}

impl Assignment {
    pub fn as_str(self) -> &'static str {
        match self {
            Assignment::Owner => "owner",
            Assignment::Nearest => "nearest",
            Assignment::LeastLoaded => "least_loaded",
            Assignment::Pool => "pool",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub cities: Vec<String>,
    #[serde(default)]
    pub territories: Vec<String>,
    /// GeoJSON Polygon or MultiPolygon.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    /// Filter expression over account attributes, e.g. `category == 'restaurant' && gmv_30d > 5000`.
    #[serde(default)]
    pub accounts: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    pub title: String,
    #[serde(default)]
    pub instructions: String,
    #[serde(default = "default_priority")]
    pub priority: Priority,
    pub due_in: String,
    #[serde(default)]
    pub require_checkin: bool,
    #[serde(default)]
    pub form: Vec<FormField>,
}

fn default_priority() -> Priority {
    Priority::Normal
}

pub const PLACEHOLDERS: [&str; 5] = ["account.name", "account.id", "city_id", "territory_id", "team_id"];

impl TaskTemplate {
    pub fn validate(&self, path: &str) -> Result<chrono::Duration, ApiError> {
        if self.title.trim().is_empty() || self.title.len() > 500 {
            return Err(ApiError::invalid(format!("{path}.title"), "title must be 1-500 bytes"));
        }
        if self.instructions.len() > 20_000 {
            return Err(ApiError::invalid(format!("{path}.instructions"), "instructions are at most 20000 bytes"));
        }
        for (field, text) in [("title", &self.title), ("instructions", &self.instructions)] {
            check_placeholders(text).map_err(|p| {
                ApiError::unprocessable("unknown_placeholder", format!("{path}.{field}"), format!("unknown placeholder {{{{{p}}}}}; known: {}", PLACEHOLDERS.join(", ")))
            })?;
        }
        validate_form(&self.form, &format!("{path}.form"))?;
        Duration::parse(&self.due_in).map(|d| d.0).map_err(|e| ApiError::invalid(format!("{path}.due_in"), e))
    }
}

fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| after.chars().take(20).collect::<String>())?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Replaces `{{account.name}}`-style placeholders with their values.
pub fn render(text: &str, values: &[(&str, &str)]) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                out.push_str(values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or(""));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A manual directive as posted to `POST /api/v1/directives`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectiveIn {
    pub name: String,
    pub target: Target,
    pub task: TaskTemplate,
    #[serde(default = "default_assignment")]
    pub assignment: Assignment,
}

fn default_assignment() -> Assignment {
    Assignment::Owner
}

/// The checks a directive and a rule share: name, target ids and area, task template.
pub fn validate_order(name: &str, target: &Target, task: &TaskTemplate) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 300 {
        return Err(ApiError::invalid("name", "name must be 1-300 bytes"));
    }
    for (i, c) in target.cities.iter().enumerate() {
        super::check_slug(c, &format!("target.cities[{i}]"))?;
    }
    for (i, t) in target.territories.iter().enumerate() {
        super::check_slug(t, &format!("target.territories[{i}]"))?;
    }
    if let Some(area) = &target.area {
        crate::geo::parse_area(area, "target.area")?;
    }
    task.validate("task")?;
    Ok(())
}

impl DirectiveIn {
    /// Checks everything that can be checked without the database (the account filter is
    /// compiled against the known attributes by `store::rules::compile_account_filter`).
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_order(&self.name, &self.target, &self.task)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_and_unknown_ones_are_refused() {
        assert_eq!(render("Visit {{account.name}} in {{ city_id }}", &[("account.name", "老王面馆"), ("city_id", "shanghai")]), "Visit 老王面馆 in shanghai");
        assert!(check_placeholders("Visit {{account.name}}").is_ok());
        assert_eq!(check_placeholders("Visit {{account.owner}}").unwrap_err(), "account.owner");
    }
}
