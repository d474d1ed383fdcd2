//! The task state machine as the field works it. Every change locks the task row, checks the
//! caller and the transition, writes the new state, the transition counts (outbox) and the
//! audit event in one transaction, then publishes the live event.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::domain::{FormField, LatLon, TaskStatus, new_id, validate_answers};
use fieldops_core::platform::app::Shared;
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{LimitedBody, Page, list_response, parse_json};
use fieldops_core::platform::idempotency;
use fieldops_core::queue::{self, FEEDBACK_STREAM, Message, outbox};
use fieldops_core::store::{audit, tasks};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::feed::{self, Event};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "field",
    params(("status" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [task], next_cursor}: an agent's own tasks and their team's pool; a manager's city")))]
pub async fn list(p: Principal, shared: web::Data<Shared>, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    if let Some(s) = &q.status {
        if TaskStatus::parse(s).is_none() {
            return Err(ApiError::bad_request("invalid_query", format!("unknown status '{s}'")).with_field("status"));
        }
    }
    let filter = tasks::TaskFilter {
        status: q.status.clone(),
        cursor: q.cursor.clone(),
        limit: Page { limit: q.limit, cursor: None }.limit()?,
        ..Default::default()
    };
    let (items, next) = tasks::list(&shared.db, &p.scope(), &filter).await?;
    Ok(list_response(items, next))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "field", responses((status = 200, body = tasks::TaskOut), (status = 404)))]
pub async fn get(p: Principal, shared: web::Data<Shared>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let t = tasks::get(&shared.db, &p.scope(), &path).await?.ok_or_else(|| ApiError::not_found("task"))?;
    Ok(HttpResponse::Ok().json(t))
}

/// The locked task row and what the checks need.
#[derive(sqlx::FromRow)]
struct Locked {
    id: String,
    status: String,
    directive_id: String,
    rule_id: Option<String>,
    city_id: String,
    territory_id: Option<String>,
    team_id: String,
    assignee_id: Option<String>,
    require_checkin: bool,
    form: sqlx::types::Json<Vec<FormField>>,
    title: String,
    account_lat: Option<f64>,
    account_lon: Option<f64>,
}

async fn lock(conn: &mut PgConnection, p: &Principal, id: &str) -> Result<Locked, ApiError> {
    let scope = p.scope();
    let sql = format!(
        "select t.id, t.status, t.directive_id, t.rule_id, t.city_id, t.territory_id, t.team_id, t.assignee_id,
                t.require_checkin, t.form, t.title, a.lat as account_lat, a.lon as account_lon
         from task t left join account a on a.id = t.account_id
         where t.id = $5 and {} for update of t",
        tasks::TASK_VISIBLE
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.role)
        .bind(&scope.city_id)
        .bind(&scope.user_id)
        .bind(&scope.team_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))
}

fn invalid_transition(t: &Locked, to: TaskStatus) -> ApiError {
    ApiError::conflict("invalid_transition", format!("a {} task cannot become {}", t.status, to.as_str()))
        .with_extra("status", json!(t.status))
}

/// Moves the locked task to `to`, recording counts and audit; `extra` sets more columns.
async fn set_status(conn: &mut PgConnection, p: &Principal, t: &Locked, to: TaskStatus, detail: Value) -> Result<(), ApiError> {
    let sql = format!(
        "update task set status = $2, {} = now(), updated_at = now(), assignee_id = coalesce(assignee_id, $3) where id = $1",
        to.timestamp_column()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&t.id).bind(to.as_str()).bind(&p.user_id).execute(&mut *conn).await?;
    outbox::transitions(conn, queue::aggregate([(t.directive_id.as_str(), t.city_id.as_str(), Some(t.status.as_str()), to.as_str())]))
        .await?;
    audit::record(conn, Some(&p.user_id), &format!("task.{}", to.as_str()), "task", &t.id, Some(&t.city_id), detail).await?;
    Ok(())
}

fn event(t: &Locked, name: &str, status: &str, assignee: Option<String>) -> Event {
    Event {
        event: name.into(),
        task_id: t.id.clone(),
        city_id: t.city_id.clone(),
        team_id: t.team_id.clone(),
        assignee_id: assignee,
        previous_assignee_id: None,
        status: status.into(),
        title: t.title.clone(),
    }
}

/// The agent's own action on a task it holds (or, for a pool task of its team, takes by acting).
fn require_holder(p: &Principal, t: &Locked) -> Result<(), ApiError> {
    p.require(&[Role::Agent])?;
    match &t.assignee_id {
        Some(a) if a == &p.user_id => Ok(()),
        None => Ok(()),
        Some(_) => Err(ApiError::not_found("task")),
    }
}

/// Checks an agent's move of the locked task to `to`: false when it is already there (a retry:
/// answered unchanged), an error when the caller does not hold it or `to` is not reachable.
fn may_move(p: &Principal, t: &Locked, to: TaskStatus, allowed: &[&str]) -> Result<bool, ApiError> {
    require_holder(p, t)?;
    if t.status == to.as_str() {
        return Ok(false);
    }
    if !allowed.contains(&t.status.as_str()) {
        return Err(invalid_transition(t, to));
    }
    Ok(true)
}

/// Runs a state change with idempotency, then answers the task and publishes the live event.
async fn change<F>(req: &HttpRequest, p: &Principal, shared: &Shared, id: &str, body: &[u8], f: F) -> Result<HttpResponse, ApiError>
where
    F: for<'c> AsyncFnOnce(&'c mut PgConnection, &'c Locked) -> Result<Option<Event>, ApiError>,
{
    let key = idempotency::key_of(req, &p.user_id, body)?;
    let mut tx = shared.db.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let locked = lock(&mut tx, p, id).await?;
    let ev = f(&mut tx, &locked).await?;
    let task = tasks::get(&mut *tx, &p.scope(), id).await?.ok_or_else(|| ApiError::not_found("task"))?;
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::OK, serde_json::to_value(&task).expect("serialises")).await?;
    tx.commit().await?;
    if let Some(ev) = ev {
        feed::publish(shared, &[ev]).await;
    }
    Ok(resp)
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/claim", tag = "field",
    responses((status = 200, body = tasks::TaskOut), (status = 404), (status = 409, description = "already claimed")))]
pub async fn claim(req: HttpRequest, p: Principal, shared: web::Data<Shared>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Agent])?;
    let key = idempotency::key_of(&req, &p.user_id, b"")?;
    let mut tx = shared.db.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    // lock the row whoever holds it (within the caller's city and team), so the loser learns 409
    let row: Option<(Option<String>, String, String, String, String)> = sqlx::query_as(
        "select assignee_id, status, directive_id, title, city_id from task where id = $1 and city_id = $2 and team_id = $3 for update",
    )
    .bind(path.as_str())
    .bind(&p.city_id)
    .bind(&p.team_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((assignee, status, _, title, city)) = row else { return Err(ApiError::not_found("task")) };
    match assignee {
        Some(a) if a == p.user_id => {}
        Some(_) => return Err(ApiError::conflict("already_claimed", "another agent has this task")),
        None if !TaskStatus::OPEN.contains(&status.as_str()) => {
            return Err(ApiError::conflict("invalid_transition", format!("a {status} task cannot be claimed")));
        }
        None => {
            sqlx::query("update task set assignee_id = $2, updated_at = now() where id = $1")
                .bind(path.as_str())
                .bind(&p.user_id)
                .execute(&mut *tx)
                .await?;
            audit::record(&mut tx, Some(&p.user_id), "task.claim", "task", &path, Some(&city), json!({})).await?;
        }
    }
    let task = tasks::get(&mut *tx, &p.scope(), &path).await?.ok_or_else(|| ApiError::not_found("task"))?;
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::OK, serde_json::to_value(&task).expect("serialises")).await?;
    tx.commit().await?;
    feed::publish(
        &shared,
        &[Event {
            event: "task.updated".into(),
            task_id: task.id.clone(),
            city_id: task.city_id.clone(),
            team_id: task.team_id.clone(),
            assignee_id: task.assignee_id.clone(),
            previous_assignee_id: None,
            status: task.status.clone(),
            title,
        }],
    )
    .await;
    Ok(resp)
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/accept", tag = "field", responses((status = 200, body = tasks::TaskOut), (status = 404), (status = 409)))]
pub async fn accept(req: HttpRequest, p: Principal, shared: web::Data<Shared>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let user = p.user_id.clone();
    change(&req, &p, &shared, &path, b"", async |conn, t| {
        if !may_move(&p, t, TaskStatus::Accepted, TaskStatus::Accepted.allowed_from())? {
            return Ok(None);
        }
        set_status(conn, &p, t, TaskStatus::Accepted, json!({})).await?;
        Ok(Some(event(t, "task.updated", "accepted", Some(user.clone()))))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinIn {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/checkin", tag = "field", request_body = CheckinIn,
    responses((status = 200, body = tasks::TaskOut), (status = 404), (status = 409), (status = 422, description = "too_far, with distance_m and radius_m")))]
pub async fn checkin(
    req: HttpRequest,
    p: Principal,
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let input: CheckinIn = parse_json(&body.0)?;
    fieldops_core::domain::check_lat_lon(input.lat, input.lon, "")?;
    if let Some(acc) = input.accuracy_m {
        if !acc.is_finite() || acc < 0.0 {
            return Err(ApiError::invalid("accuracy_m", "accuracy_m must be a non-negative number"));
        }
    }
    let radius = shared.settings.field.checkin_radius_m;
    let user = p.user_id.clone();
    change(&req, &p, &shared, &path, &body.0, async |conn, t| {
        if !may_move(&p, t, TaskStatus::CheckedIn, TaskStatus::CheckedIn.allowed_from())? {
            return Ok(None);
        }
        let distance = t.account_lat.zip(t.account_lon).map(|acc| fieldops_core::geo::distance_m(acc, (input.lat, input.lon)));
        if let Some(d) = distance {
            if d > radius {
                return Err(ApiError::unprocessable(
                    "too_far",
                    "lat",
                    format!("you are {d:.0} m from the account; check in within {radius:.0} m"),
                )
                .with_extra("distance_m", json!(d.round()))
                .with_extra("radius_m", json!(radius)));
            }
        }
        sqlx::query("update task set checkin_lat = $2, checkin_lon = $3, checkin_distance_m = $4 where id = $1")
            .bind(&t.id)
            .bind(input.lat)
            .bind(input.lon)
            .bind(distance)
            .execute(&mut *conn)
            .await?;
        set_status(conn, &p, t, TaskStatus::CheckedIn, json!({"distance_m": distance.map(f64::round)})).await?;
        Ok(Some(event(t, "task.updated", "checked_in", Some(user.clone()))))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteIn {
    #[schema(value_type = Object)]
    pub answers: serde_json::Map<String, Value>,
    pub note: Option<String>,
    #[serde(default)]
    pub photo_ids: Vec<String>,
    pub location: Option<LatLon>,
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/complete", tag = "field", request_body = CompleteIn,
    responses((status = 200, body = tasks::TaskOut), (status = 404), (status = 409), (status = 422, description = "answers checked against the form; the error names the field")))]
pub async fn complete(
    req: HttpRequest,
    p: Principal,
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let input: CompleteIn = parse_json(&body.0)?;
    if let Some(loc) = input.location {
        loc.check("location")?;
    }
    if input.note.as_ref().is_some_and(|n| n.len() > 10_000) {
        return Err(ApiError::invalid("note", "note is at most 10000 bytes"));
    }
    let user = p.user_id.clone();
    change(&req, &p, &shared, &path, &body.0, async |conn, t| {
        if t.require_checkin && t.status == "accepted" {
            require_holder(&p, t)?;
            return Err(ApiError::conflict("checkin_required", "check in at the account first").with_extra("status", json!(t.status)));
        }
        let allowed: &[&str] = if t.require_checkin { &["checked_in"] } else { TaskStatus::Completed.allowed_from() };
        if !may_move(&p, t, TaskStatus::Completed, allowed)? {
            return Ok(None);
        }
        let mut photos = validate_answers(&t.form.0, &input.answers)?;
        let answer_photo_count = photos.len();
        photos.extend(input.photo_ids.iter().cloned());
        check_photos(conn, &user, &photos, answer_photo_count).await?;
        let report_id = new_id("rep");
        sqlx::query(
            "insert into report (id, kind, task_id, directive_id, rule_id, city_id, territory_id, author_id, answers, text, lat, lon, photo_ids)
             values ($1, 'completion', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&report_id)
        .bind(&t.id)
        .bind(&t.directive_id)
        .bind(&t.rule_id)
        .bind(&t.city_id)
        .bind(&t.territory_id)
        .bind(&user)
        .bind(Value::Object(input.answers.clone()))
        .bind(&input.note)
        .bind(input.location.map(|l| l.lat))
        .bind(input.location.map(|l| l.lon))
        .bind(&photos)
        .execute(&mut *conn)
        .await?;
        outbox::enqueue(
            conn,
            FEEDBACK_STREAM,
            &Message::ReportCreated { report_id: report_id.clone(), kind: "completion".into(), city_id: t.city_id.clone(), territory_id: t.territory_id.clone(), directive_id: Some(t.directive_id.clone()) },
        )
        .await?;
        sqlx::query("update account set last_visit_at = now() where id = (select account_id from task where id = $1)").bind(&t.id).execute(&mut *conn).await?;
        set_status(conn, &p, t, TaskStatus::Completed, json!({"report_id": report_id})).await?;
        Ok(Some(event(t, "task.updated", "completed", Some(user.clone()))))
    })
    .await
}

/// Photos must exist and be the caller's own uploads. `answer_count` leading ids came from answers.
pub async fn check_photos(conn: &mut PgConnection, user: &str, ids: &[String], answer_count: usize) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = sqlx::query_scalar("select id from photo where id = any($1) and uploader_id = $2")
        .bind(ids)
        .bind(user)
        .fetch_all(&mut *conn)
        .await?;
    if let Some(i) = ids.iter().position(|id| !found.contains(id)) {
        let field = if i < answer_count { "answers".to_string() } else { format!("photo_ids[{}]", i - answer_count) };
        return Err(ApiError::unprocessable("unknown_photo", field, format!("no photo '{}' uploaded by you", ids[i])));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectIn {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/reject", tag = "field", request_body = RejectIn,
    responses((status = 200, body = tasks::TaskOut), (status = 404), (status = 409), (status = 422)))]
pub async fn reject(
    req: HttpRequest,
    p: Principal,
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let input: RejectIn = parse_json(&body.0)?;
    if input.reason.trim().is_empty() || input.reason.len() > 2_000 {
        return Err(ApiError::invalid("reason", "reason must be 1-2000 bytes"));
    }
    let user = p.user_id.clone();
    change(&req, &p, &shared, &path, &body.0, async |conn, t| {
        if !may_move(&p, t, TaskStatus::Rejected, TaskStatus::Rejected.allowed_from())? {
            return Ok(None);
        }
        sqlx::query("update task set reject_reason = $2 where id = $1").bind(&t.id).bind(&input.reason).execute(&mut *conn).await?;
        set_status(conn, &p, t, TaskStatus::Rejected, json!({"reason": input.reason})).await?;
        Ok(Some(event(t, "task.updated", "rejected", Some(user.clone()))))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    pub agent_id: String,
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/assign", tag = "field", request_body = AssignIn,
    responses((status = 200, body = tasks::TaskOut), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn assign(
    req: HttpRequest,
    p: Principal,
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::CityManager, Role::Admin])?;
    let input: AssignIn = parse_json(&body.0)?;
    change(&req, &p, &shared, &path, &body.0, async |conn, t| {
        if !TaskStatus::OPEN.contains(&t.status.as_str()) {
            return Err(ApiError::conflict("invalid_transition", format!("a {} task cannot be re-assigned", t.status)));
        }
        let agent: Option<(String,)> = sqlx::query_as("select team_id from app_user where id = $1 and role = 'agent' and city_id = $2")
            .bind(&input.agent_id)
            .bind(&t.city_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some((team,)) = agent else {
            return Err(ApiError::unprocessable("unknown_agent", "agent_id", "no agent with that id in this task's city"));
        };
        sqlx::query("update task set assignee_id = $2, team_id = $3, updated_at = now() where id = $1")
            .bind(&t.id)
            .bind(&input.agent_id)
            .bind(&team)
            .execute(&mut *conn)
            .await?;
        audit::record(
            conn,
            Some(&p.user_id),
            "task.assign",
            "task",
            &t.id,
            Some(&t.city_id),
            json!({"agent_id": input.agent_id, "from": t.assignee_id}),
        )
        .await?;
        let mut ev = event(t, "task.assigned", &t.status, Some(input.agent_id.clone()));
        ev.team_id = team;
        ev.previous_assignee_id = t.assignee_id.clone().filter(|a| a != &input.agent_id);
        Ok(Some(ev))
    })
    .await
}
