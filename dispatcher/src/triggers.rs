//! Report-triggered rules (the closed loop). For each new report, every enabled report rule whose
//! filter matches records the match for the report's group (territory or city). When a group has
//! `threshold` matches within `window` and the rule has not fired for that group within the
//! window, the rule fires a directive narrowed to that group. Runs inside the feedback consumer's
//! transaction, so a report handled twice counts once; the group's state row is locked while
//! deciding, so concurrent consumers cannot both fire.

use chrono::{DateTime, Utc};
use fieldops_core::domain::{Duration, GroupBy, Trigger};
use fieldops_core::rules::expr::Expr;
use fieldops_core::store::rules::{self, RULE_COLUMNS, RuleRow, report_schema};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

#[derive(sqlx::FromRow)]
struct ReportFacts {
    id: String,
    kind: String,
    text: Option<String>,
    tags: Vec<String>,
    city_id: String,
    territory_id: Option<String>,
    author_id: String,
    task_id: Option<String>,
    directive_id: Option<String>,
    rule_id: Option<String>,
    answers: Option<sqlx::types::Json<Value>>,
    created_at: DateTime<Utc>,
}

impl ReportFacts {
    fn facts(&self) -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("kind".into(), json!(self.kind));
        f.insert("tags".into(), json!(self.tags));
        f.insert("city_id".into(), json!(self.city_id));
        f.insert("author_id".into(), json!(self.author_id));
        for (k, v) in [
            ("text", &self.text),
            ("territory_id", &self.territory_id),
            ("task_id", &self.task_id),
            ("directive_id", &self.directive_id),
            ("rule_id", &self.rule_id),
        ] {
            if let Some(v) = v {
                f.insert(k.into(), json!(v));
            }
        }
        if let Some(a) = &self.answers {
            f.insert("answers".into(), a.0.clone());
        }
        f
    }
}

/// Returns the directives fired.
pub async fn on_reports(tx: &mut PgConnection, report_ids: &[String]) -> anyhow::Result<Vec<String>> {
    if report_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rules: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {RULE_COLUMNS} from rule where trigger_kind = 'report' and enabled and deleted_at is null order by id"
    )))
    .fetch_all(&mut *tx)
    .await?;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let reports: Vec<ReportFacts> = sqlx::query_as(
        "select id, kind, text, tags, city_id, territory_id, author_id, task_id, directive_id, rule_id, answers, created_at
         from report where id = any($1) order by created_at, id",
    )
    .bind(report_ids)
    .fetch_all(&mut *tx)
    .await?;
    let schema = report_schema();
    let mut fired = Vec::new();
    for rule in &rules {
        let Trigger::Report { filter, threshold, window, group_by } = &rule.body.0.trigger else { continue };
        let Ok(expr) = Expr::compile(filter, &schema) else {
            tracing::warn!(rule.id = %rule.id, "report rule filter no longer compiles; skipped");
            continue;
        };
        let window = Duration::parse(window).map(|d| d.0).unwrap_or(chrono::Duration::hours(24));
        for report in reports.iter().filter(|r| expr.matches(&r.facts())) {
            let group = match group_by {
                GroupBy::Territory => report.territory_id.clone(),
                GroupBy::City => Some(report.city_id.clone()),
            };
            let Some(group) = group else { continue };
            if let Some(d) = consider(tx, rule, *group_by, &group, report, *threshold, window).await? {
                fired.push(d);
            }
        }
    }
    Ok(fired)
}

async fn consider(
    tx: &mut PgConnection,
    rule: &RuleRow,
    group_by: GroupBy,
    group: &str,
    report: &ReportFacts,
    threshold: u32,
    window: chrono::Duration,
) -> anyhow::Result<Option<String>> {
    let new = sqlx::query(
        "insert into rule_report_match (rule_id, group_key, report_id, reported_at) values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(&rule.id)
    .bind(group)
    .bind(&report.id)
    .bind(report.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if new == 0 {
        return Ok(None);
    }
    sqlx::query("insert into rule_group_state (rule_id, group_key) values ($1, $2) on conflict do nothing")
        .bind(&rule.id)
        .bind(group)
        .execute(&mut *tx)
        .await?;
    let last_fired: Option<DateTime<Utc>> =
        sqlx::query_scalar("select last_fired_at from rule_group_state where rule_id = $1 and group_key = $2 for update")
            .bind(&rule.id)
            .bind(group)
            .fetch_one(&mut *tx)
            .await?;
    let since = report.created_at - window;
    if last_fired.is_some_and(|t| t > since) {
        return Ok(None);
    }
    // matches in the window, counted only after the last firing (those already made it fire)
    let from = last_fired.map_or(since, |t| t.max(since));
    let n: i64 = sqlx::query_scalar(
        "select count(*) from rule_report_match where rule_id = $1 and group_key = $2 and reported_at > $3 and reported_at <= $4",
    )
    .bind(&rule.id)
    .bind(group)
    .bind(from)
    .bind(report.created_at)
    .fetch_one(&mut *tx)
    .await?;
    if n < threshold as i64 {
        return Ok(None);
    }
    let mut target = rule.body.0.target.clone();
    match group_by {
        GroupBy::Territory => target.territories = vec![group.to_string()],
        GroupBy::City => target.cities = vec![group.to_string()],
    }
    let directive = rules::fire(tx, rule, &target, None, json!({"by": "report", "group": group, "reports": n})).await?;
    sqlx::query("update rule_group_state set last_fired_at = $3 where rule_id = $1 and group_key = $2")
        .bind(&rule.id)
        .bind(group)
        .bind(report.created_at)
        .execute(&mut *tx)
        .await?;
    let key = format!(
        "{}:{group}:{}",
        match group_by {
            GroupBy::Territory => "territory",
            GroupBy::City => "city",
        },
        report.created_at.to_rfc3339()
    );
    sqlx::query("insert into rule_firing (rule_id, firing_key, occurrence_at, status, directive_id) values ($1, $2, $3, 'fired', $4) on conflict do nothing")
        .bind(&rule.id)
        .bind(key)
        .bind(report.created_at)
        .bind(&directive)
        .execute(&mut *tx)
        .await?;
    tracing::info!(rule.id = %rule.id, group, directive.id = %directive, "report rule fired");
    Ok(Some(directive))
}
