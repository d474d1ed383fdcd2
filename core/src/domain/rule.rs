//! Strategy rules: when (trigger), where and which accounts (target), what (task template) and
//! who (assignment). Expressions and schedules are checked when a rule is saved.

use serde::{Deserialize, Serialize};

use super::{Assignment, Duration, Target, TaskTemplate};
use crate::ApiError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Territory,
    City,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Fired by hand (`POST /rules/{id}/fire`).
    Manual,
    /// 6-field cron with seconds (7 with a year), in an IANA timezone.
    Cron { cron: String, timezone: String },
    /// Fires for a group (territory or city) when `threshold` matching reports arrive there
    /// within `window`; not again for that group until the window has passed.
    Report {
        filter: String,
        threshold: u32,
        window: String,
        #[serde(default)]
        group_by: GroupBy,
    },
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Cron { .. } => "cron",
            Trigger::Report { .. } => "report",
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_assignment() -> Assignment {
    Assignment::Owner
}

/// A rule as posted (`POST /rules`, `PUT /rules/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIn {
    pub name: String,
    pub trigger: Trigger,
    pub target: Target,
    pub task: TaskTemplate,
    #[serde(default = "default_assignment")]
    pub assignment: Assignment,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl RuleIn {
    /// What can be checked without the database (expressions are checked by the store, which
    /// knows the account attributes).
    pub fn validate(&self) -> Result<(), ApiError> {
        super::directive::validate_order(&self.name, &self.target, &self.task)?;
        match &self.trigger {
            Trigger::Manual => {}
            Trigger::Cron { cron, timezone } => {
                crate::rules::schedule::Schedule::parse(cron, timezone)
                    .map_err(|e| ApiError::unprocessable("invalid_schedule", format!("trigger.{}", e.field), e.message))?;
            }
            Trigger::Report { threshold, window, .. } => {
                if *threshold == 0 || *threshold > 10_000 {
                    return Err(ApiError::invalid("trigger.threshold", "threshold must be 1-10000"));
                }
                Duration::parse(window).map_err(|e| ApiError::invalid("trigger.window", e))?;
            }
        }
        Ok(())
    }
}
