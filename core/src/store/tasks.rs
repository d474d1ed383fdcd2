//! Tasks: the wire shape and scoped reads shared by HQ and the field side.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

use crate::auth::Scope;

#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub directive_id: String,
    pub rule_id: Option<String>,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub team_id: String,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub account_lat: Option<f64>,
    pub account_lon: Option<f64>,
    pub assignee_id: Option<String>,
    pub status: String,
    pub priority: String,
    pub title: String,
    pub instructions: String,
    pub form: sqlx::types::Json<serde_json::Value>,
    pub require_checkin: bool,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountRef {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub status: String,
    pub at: DateTime<Utc>,
}

/// A task on the wire.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskOut {
    pub id: String,
    pub directive_id: String,
    pub rule_id: Option<String>,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub team_id: String,
    pub account: Option<AccountRef>,
    pub assignee_id: Option<String>,
    pub status: String,
    pub overdue: bool,
    pub priority: String,
    pub title: String,
    pub instructions: String,
    #[schema(value_type = Vec<crate::domain::FormField>)]
    pub form: serde_json::Value,
    pub require_checkin: bool,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Every state entered, in order.
    pub history: Vec<HistoryEntry>,
}

impl From<TaskRow> for TaskOut {
    fn from(r: TaskRow) -> TaskOut {
        let mut history: Vec<HistoryEntry> = [
            ("queued", Some(r.queued_at)),
            ("delivered", r.delivered_at),
            ("accepted", r.accepted_at),
            ("checked_in", r.checked_in_at),
            ("completed", r.completed_at),
            ("rejected", r.rejected_at),
            ("cancelled", r.cancelled_at),
        ]
        .into_iter()
        .filter_map(|(s, at)| at.map(|at| HistoryEntry { status: s.into(), at }))
        .collect();
        history.sort_by_key(|h| h.at);
        let open = crate::domain::TaskStatus::OPEN.contains(&r.status.as_str());
        TaskOut {
            overdue: open && r.due_at < Utc::now(),
            account: match (r.account_id, r.account_name, r.account_lat, r.account_lon) {
                (Some(id), Some(name), Some(lat), Some(lon)) => Some(AccountRef { id, name, lat, lon }),
                _ => None,
            },
            id: r.id,
            directive_id: r.directive_id,
            rule_id: r.rule_id,
            city_id: r.city_id,
            territory_id: r.territory_id,
            team_id: r.team_id,
            assignee_id: r.assignee_id,
            status: r.status,
            priority: r.priority,
            title: r.title,
            instructions: r.instructions,
            form: r.form.0,
            require_checkin: r.require_checkin,
            due_at: r.due_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            reject_reason: r.reject_reason,
            history,
        }
    }
}

pub const TASK_SELECT: &str = "select t.id, t.directive_id, t.rule_id, t.city_id, t.territory_id, t.team_id, t.account_id,
    a.name as account_name, a.lat as account_lat, a.lon as account_lon, t.assignee_id, t.status, t.priority, t.title,
    t.instructions, t.form, t.require_checkin, t.due_at, t.created_at, t.updated_at, t.queued_at, t.delivered_at,
    t.accepted_at, t.checked_in_at, t.completed_at, t.rejected_at, t.cancelled_at, t.reject_reason
    from task t left join account a on a.id = t.account_id";

/// The visibility predicate for tasks, binding `$1` role, `$2` city (null for HQ), `$3` user,
/// `$4` team: HQ sees all, a manager the city, an agent their own tasks and their team's pool.
pub const TASK_VISIBLE: &str = "($2::text is null or t.city_id = $2)
    and ($1 <> 'agent' or t.assignee_id = $3 or (t.assignee_id is null and t.team_id = $4))";

pub async fn get<'e>(db: impl PgExecutor<'e>, scope: &Scope, id: &str) -> Result<Option<TaskOut>, sqlx::Error> {
    let sql = format!("{TASK_SELECT} where {TASK_VISIBLE} and t.id = $5");
    let row: Option<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.role)
        .bind(&scope.city_id)
        .bind(&scope.user_id)
        .bind(&scope.team_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(TaskOut::from))
}

/// Filters of a task list.
#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    pub directive_id: Option<String>,
    pub city_id: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// Newest first; the cursor is the last id of the previous page.
pub async fn list<'e>(db: impl PgExecutor<'e>, scope: &Scope, f: &TaskFilter) -> Result<(Vec<TaskOut>, Option<String>), sqlx::Error> {
    let sql = format!(
        "{TASK_SELECT} where {TASK_VISIBLE}
         and ($5::text is null or t.directive_id = $5)
         and ($6::text is null or t.city_id = $6)
         and ($7::text is null or t.status = $7)
         and ($8::text is null or t.id < $8)
         order by t.id desc limit $9"
    );
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.role)
        .bind(&scope.city_id)
        .bind(&scope.user_id)
        .bind(&scope.team_id)
        .bind(&f.directive_id)
        .bind(&f.city_id)
        .bind(&f.status)
        .bind(&f.cursor)
        .bind(f.limit + 1)
        .fetch_all(db)
        .await?;
    Ok(page(rows.into_iter().map(TaskOut::from).collect(), f.limit, |t| t.id.clone()))
}

/// Cuts a fetched `limit + 1` list into a page and the next cursor.
pub fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        let next = items.last().map(id);
        (items, next)
    } else {
        (items, None)
    }
}
