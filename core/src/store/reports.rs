//! Field reports: completions (with the form answers), intel and issues.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

use crate::auth::Scope;
use crate::domain::LatLon;

#[derive(Debug, Clone, FromRow)]
pub struct ReportRow {
    pub id: String,
    pub kind: String,
    pub task_id: Option<String>,
    pub directive_id: Option<String>,
    pub rule_id: Option<String>,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub author_id: String,
    pub answers: Option<sqlx::types::Json<serde_json::Value>>,
    pub text: Option<String>,
    pub tags: Vec<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub photo_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportOut {
    pub id: String,
    pub kind: String,
    pub task_id: Option<String>,
    pub directive_id: Option<String>,
    pub rule_id: Option<String>,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub author_id: String,
    #[schema(value_type = Option<Object>)]
    pub answers: Option<serde_json::Value>,
    pub text: Option<String>,
    pub tags: Vec<String>,
    pub location: Option<LatLon>,
    pub photo_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ReportRow> for ReportOut {
    fn from(r: ReportRow) -> ReportOut {
        ReportOut {
            id: r.id,
            kind: r.kind,
            task_id: r.task_id,
            directive_id: r.directive_id,
            rule_id: r.rule_id,
            city_id: r.city_id,
            territory_id: r.territory_id,
            author_id: r.author_id,
            answers: r.answers.map(|a| a.0),
            text: r.text,
            tags: r.tags,
            location: match (r.lat, r.lon) {
                (Some(lat), Some(lon)) => Some(LatLon { lat, lon }),
                _ => None,
            },
            photo_ids: r.photo_ids,
            created_at: r.created_at,
        }
    }
}

const REPORT_SELECT: &str = "select id, kind, task_id, directive_id, rule_id, city_id, territory_id, author_id, answers, text,
    tags, lat, lon, photo_ids, created_at from report r";

/// HQ sees every report, a manager the city's, an agent their own. Binds `$1` role, `$2` city, `$3` user.
const REPORT_VISIBLE: &str = "($2::text is null or r.city_id = $2) and ($1 <> 'agent' or r.author_id = $3)";

#[derive(Debug, Default, Clone)]
pub struct ReportFilter {
    pub directive_id: Option<String>,
    pub rule_id: Option<String>,
    pub city_id: Option<String>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: i64,
}

pub async fn get<'e>(db: impl PgExecutor<'e>, scope: &Scope, id: &str) -> Result<Option<ReportOut>, sqlx::Error> {
    let row: Option<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{REPORT_SELECT} where {REPORT_VISIBLE} and r.id = $4")))
        .bind(scope.role)
        .bind(&scope.city_id)
        .bind(&scope.user_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(ReportOut::from))
}

/// Newest first (ids are time-ordered).
pub async fn list<'e>(db: impl PgExecutor<'e>, scope: &Scope, f: &ReportFilter) -> Result<(Vec<ReportOut>, Option<String>), sqlx::Error> {
    let sql = format!(
        "{REPORT_SELECT} where {REPORT_VISIBLE}
         and ($4::text is null or r.directive_id = $4)
         and ($5::text is null or r.rule_id = $5)
         and ($6::text is null or r.city_id = $6)
         and ($7::text is null or r.kind = $7)
         and ($8::timestamptz is null or r.created_at >= $8)
         and ($9::text is null or r.id < $9)
         order by r.id desc limit $10"
    );
    let rows: Vec<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.role)
        .bind(&scope.city_id)
        .bind(&scope.user_id)
        .bind(&f.directive_id)
        .bind(&f.rule_id)
        .bind(&f.city_id)
        .bind(&f.kind)
        .bind(f.since)
        .bind(&f.cursor)
        .bind(f.limit + 1)
        .fetch_all(db)
        .await?;
    Ok(super::tasks::page(rows.into_iter().map(ReportOut::from).collect(), f.limit, |r| r.id.clone()))
}
