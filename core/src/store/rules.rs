//! Strategy rules: storage with versions, the names their expressions may use, and firing
//! (a rule firing is a directive that records the rule and its version).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{FromRow, PgConnection};

use crate::ApiError;
use crate::domain::{RuleIn, Target, Trigger, new_id};
use crate::rules::expr::{Expr, ExprError, ExprErrorKind, Schema, Ty};
use crate::rules::schedule::Schedule;

/// Names an account filter may use: the built-ins and every attribute imported accounts carry.
pub async fn account_schema(conn: &mut PgConnection) -> Result<Schema, sqlx::Error> {
    let mut schema = Schema::new()
        .with("id", Ty::String)
        .with("name", Ty::String)
        .with("city_id", Ty::String)
        .with("territory_id", Ty::String)
        .with("owner_id", Ty::String)
        .with("days_since_visit", Ty::Number);
    let attrs: Vec<(String, String)> = sqlx::query_as("select key, ty from account_attribute").fetch_all(conn).await?;
    for (key, ty) in attrs {
        if matches!(key.as_str(), "id" | "name" | "city_id" | "territory_id" | "owner_id" | "days_since_visit") {
            continue;
        }
        schema = schema.with(
            &key,
            match ty.as_str() {
                "number" => Ty::Number,
                "boolean" => Ty::Bool,
                _ => Ty::String,
            },
        );
    }
    Ok(schema)
}

/// Names a report filter may use.
pub fn report_schema() -> Schema {
    Schema::new()
        .with("kind", Ty::String)
        .with("text", Ty::String)
        .with("tags", Ty::StringList)
        .with("city_id", Ty::String)
        .with("territory_id", Ty::String)
        .with("author_id", Ty::String)
        .with("task_id", Ty::String)
        .with("directive_id", Ty::String)
        .with("rule_id", Ty::String)
        .with("answers", Ty::Map)
}

/// A compile error as a 422 naming the field, with the position in the expression.
pub fn expression_error(field: &str, e: ExprError) -> ApiError {
    let code = match e.kind {
        ExprErrorKind::Syntax => "invalid_expression",
        ExprErrorKind::UnknownName => "unknown_attribute",
        _ => "type_error",
    };
    ApiError::unprocessable(code, field, e.message.clone())
        .with_extra("position", json!(e.position))
        .with_extra("line", json!(e.line))
        .with_extra("column", json!(e.column))
}

/// Compiles an account filter against the current attributes (422 on any problem).
pub async fn compile_account_filter(conn: &mut PgConnection, src: &str, field: &str) -> Result<Expr, ApiError> {
    let schema = account_schema(conn).await?;
    Expr::compile(src, &schema).map_err(|e| expression_error(field, e))
}

/// `{{account.<attribute>}}` placeholders must name an attribute imported accounts carry.
pub async fn check_template_attributes(conn: &mut PgConnection, task: &crate::domain::TaskTemplate) -> Result<(), ApiError> {
    let wanted = task.attribute_placeholders();
    if wanted.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = sqlx::query_scalar("select key from account_attribute").fetch_all(conn).await?;
    for (field, attr) in wanted {
        if !known.contains(&attr) {
            return Err(crate::domain::unknown_placeholder("task", field, &format!("account.{attr}")));
        }
    }
    Ok(())
}

/// Checks every expression and template placeholder of a rule.
pub async fn check_expressions(conn: &mut PgConnection, rule: &RuleIn) -> Result<(), ApiError> {
    check_template_attributes(conn, &rule.task).await?;
    if let Some(src) = &rule.target.accounts {
        compile_account_filter(conn, src, "target.accounts").await?;
    }
    if let Trigger::Report { filter, .. } = &rule.trigger {
        Expr::compile(filter, &report_schema()).map_err(|e| expression_error("trigger.filter", e))?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct RuleRow {
    pub id: String,
    pub version: i32,
    pub name: String,
    pub enabled: bool,
    pub body: sqlx::types::Json<RuleIn>,
    pub cron_next_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const RULE_COLUMNS: &str = "id, version, name, enabled, body, cron_next_at, created_by, created_at, updated_at";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleOut {
    pub id: String,
    pub version: i32,
    pub enabled: bool,
    pub name: String,
    #[schema(value_type = Object)]
    pub trigger: Value,
    #[schema(value_type = Object)]
    pub target: Value,
    #[schema(value_type = Object)]
    pub task: Value,
    pub assignment: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Cron rules: the next occurrences, in the rule's timezone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_occurrences: Vec<String>,
}

impl From<RuleRow> for RuleOut {
    fn from(r: RuleRow) -> RuleOut {
        let body = r.body.0;
        let next_occurrences = match &body.trigger {
            Trigger::Cron { cron, timezone } if r.enabled => Schedule::parse(cron, timezone)
                .map(|s| s.upcoming(Utc::now(), 5).into_iter().map(|o| o.local.to_rfc3339()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        RuleOut {
            id: r.id,
            version: r.version,
            enabled: r.enabled,
            name: r.name,
            trigger: serde_json::to_value(&body.trigger).unwrap_or(Value::Null),
            target: serde_json::to_value(&body.target).unwrap_or(Value::Null),
            task: serde_json::to_value(&body.task).unwrap_or(Value::Null),
            assignment: body.assignment.as_str().to_string(),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            next_occurrences,
        }
    }
}

/// The next cron occurrence after now for an enabled cron rule.
pub fn cron_next(rule: &RuleIn, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &rule.trigger {
        Trigger::Cron { cron, timezone } if rule.enabled => Schedule::parse(cron, timezone).ok()?.next_after(after).map(|o| o.at),
        _ => None,
    }
}

pub async fn get(conn: &mut PgConnection, id: &str, lock: bool) -> Result<Option<RuleRow>, sqlx::Error> {
    let sql = format!("select {RULE_COLUMNS} from rule where id = $1 and deleted_at is null{}", if lock { " for update" } else { "" });
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
}

pub async fn create(conn: &mut PgConnection, rule: &RuleIn, user: &str) -> Result<RuleRow, sqlx::Error> {
    let id = new_id("rule");
    let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into rule (id, name, enabled, trigger_kind, body, cron_next_at, created_by) values ($1, $2, $3, $4, $5, $6, $7) returning {RULE_COLUMNS}"
    )))
    .bind(&id)
    .bind(&rule.name)
    .bind(rule.enabled)
    .bind(rule.trigger.kind())
    .bind(sqlx::types::Json(rule))
    .bind(cron_next(rule, Utc::now()))
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("insert into rule_version (rule_id, version, body, created_by) values ($1, 1, $2, $3)")
        .bind(&id)
        .bind(sqlx::types::Json(rule))
        .bind(user)
        .execute(conn)
        .await?;
    Ok(row)
}

/// Saves a new version (the caller holds the row lock).
pub async fn update(conn: &mut PgConnection, id: &str, rule: &RuleIn, user: &str) -> Result<RuleRow, sqlx::Error> {
    let row: RuleRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update rule set version = version + 1, name = $2, enabled = $3, trigger_kind = $4, body = $5, cron_next_at = $6, updated_at = now()
         where id = $1 returning {RULE_COLUMNS}"
    )))
    .bind(id)
    .bind(&rule.name)
    .bind(rule.enabled)
    .bind(rule.trigger.kind())
    .bind(sqlx::types::Json(rule))
    .bind(cron_next(rule, Utc::now()))
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("insert into rule_version (rule_id, version, body, created_by) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(row.version)
        .bind(sqlx::types::Json(rule))
        .bind(user)
        .execute(conn)
        .await?;
    Ok(row)
}

/// Creates the directive of a rule firing; `target` may narrow the rule's (a report group).
pub async fn fire(
    conn: &mut PgConnection,
    rule: &RuleRow,
    target: &Target,
    actor: Option<&str>,
    detail: Value,
) -> Result<String, sqlx::Error> {
    let body = &rule.body.0;
    let id = crate::store::directives::insert(
        conn,
        &body.name,
        target,
        &body.task,
        body.assignment,
        actor.unwrap_or(&rule.created_by),
        Some((&rule.id, rule.version)),
    )
    .await?;
    crate::store::audit::record(
        conn,
        actor,
        "rule.fire",
        "rule",
        &rule.id,
        None,
        json!({"directive_id": id, "version": rule.version, "detail": detail}),
    )
    .await?;
    Ok(id)
}
