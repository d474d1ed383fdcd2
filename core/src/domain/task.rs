use serde::{Deserialize, Serialize};

/// The task state machine: queued -> delivered -> accepted -> checked_in -> completed,
/// with rejected (by the agent) and cancelled (by HQ) as the other ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Delivered,
    Accepted,
    CheckedIn,
    Completed,
    Rejected,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Queued,
        TaskStatus::Delivered,
        TaskStatus::Accepted,
        TaskStatus::CheckedIn,
        TaskStatus::Completed,
        TaskStatus::Rejected,
        TaskStatus::Cancelled,
    ];
    pub const OPEN: [&'static str; 4] = ["queued", "delivered", "accepted", "checked_in"];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Delivered => "delivered",
            TaskStatus::Accepted => "accepted",
            TaskStatus::CheckedIn => "checked_in",
            TaskStatus::Completed => "completed",
            TaskStatus::Rejected => "rejected",
            TaskStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// The column holding the time this state was entered.
    pub fn timestamp_column(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued_at",
            TaskStatus::Delivered => "delivered_at",
            TaskStatus::Accepted => "accepted_at",
            TaskStatus::CheckedIn => "checked_in_at",
            TaskStatus::Completed => "completed_at",
            TaskStatus::Rejected => "rejected_at",
            TaskStatus::Cancelled => "cancelled_at",
        }
    }
    /// The states a transition into `self` may start from.
    pub fn allowed_from(self) -> &'static [&'static str] {
        match self {
            TaskStatus::Queued => &[],
            TaskStatus::Delivered => &["queued"],
            TaskStatus::Accepted => &["queued", "delivered"],
            TaskStatus::CheckedIn => &["accepted"],
            TaskStatus::Completed => &["accepted", "checked_in"],
            TaskStatus::Rejected => &["queued", "delivered", "accepted", "checked_in"],
            TaskStatus::Cancelled => &["queued", "delivered", "accepted", "checked_in"],
        }
    }
    pub fn is_open(self) -> bool {
        TaskStatus::OPEN.contains(&self.as_str())
    }
}
