//! Target resolution: which tasks a directive (or a rule, for a preview) makes, for whom.
//! Shared by the dispatcher (which writes them) and hq-console (which previews them).

use std::collections::HashMap;

use crate::domain::{Assignment, Target, TaskTemplate, render};
use crate::rules::expr::Expr;
use geo::Intersects;
use serde_json::{Value, json};
use sqlx::PgConnection;

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub owner_id: Option<String>,
    pub owner_team: Option<String>,
    pub territory_team: Option<String>,
    pub attributes: sqlx::types::Json<serde_json::Map<String, Value>>,
    pub last_visit_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The targeted accounts (cities `$1`, territories `$2`, empty = all) with their teams.
pub const ACCOUNTS_SQL: &str = "select a.id, a.name, a.lat, a.lon, a.city_id, a.territory_id, a.owner_id, u.team_id as owner_team,
        t.team_id as territory_team, a.attributes, a.last_visit_at
 from account a left join territory t on t.id = a.territory_id left join app_user u on u.id = a.owner_id and u.role = 'agent'
 where a.city_id = any($1) and (cardinality($2::text[]) = 0 or a.territory_id = any($2)) order by a.id collate \"C\"";

impl AccountRow {
    /// What a filter sees: the attributes, the built-in names, and `days_since_visit` from the
    /// last completed visit (else the imported attribute of that name, if any).
    pub fn facts(&self, now: chrono::DateTime<chrono::Utc>) -> serde_json::Map<String, Value> {
        let mut f = self.attributes.0.clone();
        f.insert("id".into(), Value::String(self.id.clone()));
        f.insert("name".into(), Value::String(self.name.clone()));
        f.insert("city_id".into(), Value::String(self.city_id.clone()));
        if let Some(t) = &self.territory_id {
            f.insert("territory_id".into(), Value::String(t.clone()));
        }
        if let Some(o) = &self.owner_id {
            f.insert("owner_id".into(), Value::String(o.clone()));
        }
        if let Some(v) = self.last_visit_at {
            f.insert("days_since_visit".into(), json!((now - v).num_days()));
        }
        f
    }
}

/// What resolving a target produced.
pub struct Resolution {
    pub tasks: Vec<NewTask>,
    /// Targets that got no task, with the reason.
    pub skipped: Vec<Value>,
}

/// One task to be written.
pub struct NewTask {
    pub city_id: String,
    pub territory_id: Option<String>,
    pub team_id: String,
    pub account_id: Option<String>,
    pub assignee_id: Option<String>,
    pub title: String,
    pub instructions: String,
}

#[derive(Clone)]
pub struct Agent {
    pub id: String,
    pub home: Option<(f64, f64)>,
    pub open: i64,
}

pub async fn resolve(
    tx: &mut PgConnection,
    target: &Target,
    template: &TaskTemplate,
    assignment: Assignment,
) -> anyhow::Result<Resolution> {
    let cities: Vec<String> = if target.cities.is_empty() {
        sqlx::query_scalar("select id from city order by id").fetch_all(&mut *tx).await?
    } else {
        target.cities.clone()
    };
    let area = match &target.area {
        Some(a) => Some(crate::geo::parse_area(a, "target.area").map_err(|e| anyhow::anyhow!(e.message))?),
        None => None,
    };
    // agents by team, with their open load (counted only where the policy needs it)
    let agent_rows: Vec<(String, String, Option<f64>, Option<f64>, i64)> = sqlx::query_as(
        "select u.id, u.team_id, u.home_lat, u.home_lon,
                case when $2 then (select count(*) from task t where t.assignee_id = u.id and t.status in ('queued', 'delivered', 'accepted', 'checked_in')) else 0 end
         from app_user u where u.role = 'agent' and u.city_id = any($1) order by u.id",
    )
    .bind(&cities)
    .bind(assignment == Assignment::LeastLoaded)
    .fetch_all(&mut *tx)
    .await?;
    let mut agents: HashMap<String, Vec<Agent>> = HashMap::new();
    for (id, team, lat, lon, open) in agent_rows {
        agents.entry(team).or_default().push(Agent { id, home: lat.zip(lon), open });
    }
    let first_team: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "select distinct on (city_id) city_id, id from team where city_id = any($1) order by city_id, id",
    )
    .bind(&cities)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut tasks = Vec::new();
    let mut skipped = Vec::new();
    let render_all = |a: Option<&AccountRow>, city: &str, territory: Option<&str>, team: &str| {
        let value = |name: &str| -> Option<String> {
            match name {
                "city_id" => Some(city.to_string()),
                "territory_id" => territory.map(str::to_string),
                "team_id" => Some(team.to_string()),
                "account.name" => a.map(|a| a.name.clone()),
                "account.id" => a.map(|a| a.id.clone()),
                other => match a?.attributes.0.get(other.strip_prefix("account.")?)? {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    v => Some(v.to_string()),
                },
            }
        };
        (render(&template.title, value), render(&template.instructions, value))
    };

    match &target.accounts {
        Some(expr) => {
            let schema = crate::store::rules::account_schema(&mut *tx).await?;
            let filter = Expr::compile(expr, &schema).map_err(|e| anyhow::anyhow!("target.accounts: {}", e.message))?;
            let now = chrono::Utc::now();
            let accounts: Vec<AccountRow> =
                sqlx::query_as(ACCOUNTS_SQL).bind(&cities).bind(&target.territories).fetch_all(&mut *tx).await?;
            for a in accounts.iter().filter(|a| filter.matches(&a.facts(now))) {
                if let Some(area) = &area
                    && !area.intersects(&geo::Point::new(a.lon, a.lat))
                {
                    continue;
                }
                let owner_ok = a.owner_team.is_some();
                let team = match (assignment, owner_ok) {
                    (Assignment::Owner, true) => a.owner_team.clone(),
                    _ => a.territory_team.clone().or_else(|| a.owner_team.clone()).or_else(|| first_team.get(&a.city_id).cloned()),
                };
                let Some(team) = team else {
                    skipped.push(json!({"account_id": a.id, "city_id": a.city_id, "reason": "no team in the account's city"}));
                    continue;
                };
                let team_agents = agents.get_mut(&team);
                let assignee = match assignment {
                    Assignment::Owner => a.owner_id.clone().filter(|_| owner_ok),
                    Assignment::Pool => None,
                    Assignment::Nearest => team_agents.and_then(|ag| nearest(ag, a.lat, a.lon)),
                    Assignment::LeastLoaded => team_agents.and_then(least_loaded),
                };
                let (title, instructions) = render_all(Some(a), &a.city_id, a.territory_id.as_deref(), &team);
                tasks.push(NewTask {
                    city_id: a.city_id.clone(),
                    territory_id: a.territory_id.clone(),
                    team_id: team,
                    account_id: Some(a.id.clone()),
                    assignee_id: assignee,
                    title,
                    instructions,
                });
            }
        }
        None => {
            // one task per team in the targeted places
            let teams: Vec<(String, String)> = sqlx::query_as(
                "select distinct tm.id, tm.city_id from team tm
                 where tm.city_id = any($1)
                   and (cardinality($2::text[]) = 0 or exists (select 1 from territory t where t.team_id = tm.id and t.id = any($2)))
                 order by tm.id",
            )
            .bind(&cities)
            .bind(&target.territories)
            .fetch_all(&mut *tx)
            .await?;
            for (team, city) in teams {
                let assignee = match assignment {
                    Assignment::LeastLoaded => agents.get_mut(&team).and_then(least_loaded),
                    _ => None,
                };
                let (title, instructions) = render_all(None, &city, None, &team);
                tasks.push(NewTask {
                    city_id: city,
                    territory_id: None,
                    team_id: team,
                    account_id: None,
                    assignee_id: assignee,
                    title,
                    instructions,
                });
            }
        }
    }
    Ok(Resolution { tasks, skipped })
}

/// The agent whose home is nearest (great-circle), ties to the smaller id; agents without a home are not candidates.
fn nearest(agents: &mut [Agent], lat: f64, lon: f64) -> Option<String> {
    let best = agents
        .iter_mut()
        .filter_map(|a| a.home.map(|h| (crate::geo::distance_m(h, (lat, lon)), a)))
        .min_by(|(d1, a1), (d2, a2)| d1.total_cmp(d2).then_with(|| a1.id.cmp(&a2.id)))?;
    best.1.open += 1;
    Some(best.1.id.clone())
}

/// The agent with the fewest open tasks, ties to the smaller id; counts the new task at once.
fn least_loaded(agents: &mut Vec<Agent>) -> Option<String> {
    let a = agents.iter_mut().min_by(|a, b| a.open.cmp(&b.open).then_with(|| a.id.cmp(&b.id)))?;
    a.open += 1;
    Some(a.id.clone())
}
