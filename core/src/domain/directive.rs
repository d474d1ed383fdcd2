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

/// Placeholders every template may use; `{{account.<attribute>}}` is also accepted for any
/// attribute imported accounts carry (checked against the catalogue by the store).
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
            for name in placeholders(text).map_err(|p| unknown_placeholder(path, field, &p))? {
                let attribute_like = name
                    .strip_prefix("account.")
                    .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                if !PLACEHOLDERS.contains(&name.as_str()) && !attribute_like {
                    return Err(unknown_placeholder(path, field, &name));
                }
            }
        }
        validate_form(&self.form, &format!("{path}.form"))?;
        Duration::parse(&self.due_in).map(|d| d.0).map_err(|e| ApiError::invalid(format!("{path}.due_in"), e))
    }

    /// The `account.<attribute>` placeholders of title and instructions, with their field.
    pub fn attribute_placeholders(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, text) in [("title", &self.title), ("instructions", &self.instructions)] {
            for name in placeholders(text).unwrap_or_default() {
                if let Some(attr) = name.strip_prefix("account.")
                    && !PLACEHOLDERS.contains(&name.as_str())
                {
                    out.push((field, attr.to_string()));
                }
            }
        }
        out
    }
}

pub fn unknown_placeholder(path: &str, field: &str, name: &str) -> ApiError {
    ApiError::unprocessable(
        "unknown_placeholder",
        format!("{path}.{field}"),
        format!("unknown placeholder {{{{{name}}}}}; known: {}, account.<attribute>", PLACEHOLDERS.join(", ")),
    )
}

/// The placeholder names in `text`; an unterminated `{{` is an error (its start is returned).
fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| after.chars().take(20).collect::<String>())?;
        names.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// Replaces `{{name}}` placeholders with `value(name)` (empty when it has none). One pass: a value
/// that itself contains `{{...}}` (a merchant named "{{account.id}}") is inserted literally,
/// never expanded again. Output is plain text; pages escape it for HTML where they show it.
pub fn render(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
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
                out.push_str(&value(after[..end].trim()).unwrap_or_default());
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
    fn placeholders_render_once_and_unknown_ones_are_refused() {
        let values = |n: &str| match n {
            "account.name" => Some("{{account.id}} 老王面馆".to_string()),
            "city_id" => Some("shanghai".to_string()),
            _ => None,
        };
        assert_eq!(
            render("Visit {{account.name}} in {{ city_id }}", values),
            "Visit {{account.id}} 老王面馆 in shanghai",
            "values are not expanded again"
        );
        let t = |title: &str| TaskTemplate {
            title: title.into(),
            instructions: String::new(),
            priority: Priority::High,
            due_in: "1h".into(),
            require_checkin: false,
            form: vec![],
        };
        assert!(t("Visit {{account.name}}").validate("task").is_ok());
        assert_eq!(t("Visit {{account.gmv_30d}}").attribute_placeholders(), vec![("title", "gmv_30d".to_string())]);
        assert_eq!(t("Visit {{owner}}").validate("task").unwrap_err().code, "unknown_placeholder");
        assert_eq!(t("Visit {{account.x y}}").validate("task").unwrap_err().field.as_deref(), Some("task.title"));
    }
}
