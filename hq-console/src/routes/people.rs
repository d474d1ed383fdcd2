//! Users and teams (admin).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role, hash_password};
use fieldops_core::domain::{LatLon, check_slug, new_id};
use fieldops_core::platform::error::{ApiError, map_db_conflict};
use fieldops_core::platform::http::{LimitedBody, Page, list_response, parse_json};
use fieldops_core::platform::idempotency;
use fieldops_core::store::audit;
use fieldops_core::store::users::{USER_COLUMNS, UserRow};
use serde::Deserialize;
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    pub username: String,
    pub password: String,
    pub display_name: String,
    pub role: Role,
    pub city_id: Option<String>,
    pub team_id: Option<String>,
    pub home: Option<LatLon>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamIn {
    pub id: String,
    pub city_id: String,
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "people", request_body = UserIn,
    responses((status = 201, body = fieldops_core::store::users::UserOut), (status = 409), (status = 422)))]
pub async fn create_user(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin])?;
    let input: UserIn = parse_json(&body.0)?;
    let uname_ok = !input.username.is_empty()
        && input.username.len() <= 64
        && input.username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !uname_ok {
        return Err(ApiError::invalid("username", "username must be 1-64 characters of A-Z a-z 0-9 - _ ."));
    }
    if input.password.len() < 8 || input.password.len() > 256 {
        return Err(ApiError::invalid("password", "password must be 8-256 bytes"));
    }
    if input.display_name.trim().is_empty() || input.display_name.len() > 200 {
        return Err(ApiError::invalid("display_name", "display_name must be 1-200 bytes"));
    }
    if let Some(home) = input.home {
        home.check("home")?;
    }
    match input.role {
        Role::Agent if input.city_id.is_none() || input.team_id.is_none() => {
            return Err(ApiError::invalid(if input.city_id.is_none() { "city_id" } else { "team_id" }, "an agent needs a city and a team"));
        }
        Role::CityManager if input.city_id.is_none() => return Err(ApiError::invalid("city_id", "a city manager needs a city")),
        r if r.is_hq() && (input.city_id.is_some() || input.team_id.is_some()) => {
            return Err(ApiError::invalid("city_id", "HQ roles are not tied to a city or team"));
        }
        _ => {}
    }
    let key = idempotency::key_of(&req, &p.user_id, &body.0)?;
    let mut tx = pool.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    if let Some(team) = &input.team_id {
        let team_city: Option<String> =
            sqlx::query_scalar("select city_id from team where id = $1").bind(team).fetch_optional(&mut *tx).await?;
        match team_city {
            None => return Err(ApiError::unprocessable("unknown_team", "team_id", format!("no team '{team}'"))),
            Some(c) if Some(&c) != input.city_id.as_ref() => {
                return Err(ApiError::unprocessable("team_city_mismatch", "team_id", format!("team '{team}' belongs to city '{c}'")));
            }
            _ => {}
        }
    }
    let password = input.password.clone();
    let hash = web::block(move || hash_password(&password)).await.map_err(ApiError::internal)??;
    let id = new_id("usr");
    let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into app_user (id, username, password_hash, display_name, role, city_id, team_id, home_lat, home_lon)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {USER_COLUMNS}"
    )))
    .bind(&id)
    .bind(&input.username)
    .bind(&hash)
    .bind(&input.display_name)
    .bind(input.role.as_str())
    .bind(&input.city_id)
    .bind(&input.team_id)
    .bind(input.home.map(|h| h.lat))
    .bind(input.home.map(|h| h.lon))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| map_db_conflict(e, if input.city_id.is_some() { "city_id" } else { "username" }, "user"))
    .map_err(|e| if e.code == "already_exists" { e.with_field("username") } else { e })?;
    audit::record(
        &mut tx,
        Some(&p.user_id),
        "user.create",
        "user",
        &id,
        input.city_id.as_deref(),
        serde_json::json!({"role": input.role.as_str()}),
    )
    .await?;
    let resp =
        idempotency::respond(&mut tx, key.as_ref(), StatusCode::CREATED, serde_json::to_value(row.to_out()).expect("serialises")).await?;
    tx.commit().await?;
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "people", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [user], next_cursor}")))]
pub async fn list_users(p: Principal, pool: web::Data<PgPool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin])?;
    let limit = page.limit()?;
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {USER_COLUMNS} from app_user where ($1::text is null or id > $1) order by id limit $2"
    )))
    .bind(&page.cursor)
    .bind(limit + 1)
    .fetch_all(pool.get_ref())
    .await?;
    let (items, next) = fieldops_core::store::tasks::page(rows, limit, |u| u.id.clone());
    Ok(list_response(items.iter().map(UserRow::to_out).collect(), next))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "people", request_body = TeamIn,
    responses((status = 201, description = "team"), (status = 409), (status = 422)))]
pub async fn create_team(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin])?;
    let input: TeamIn = parse_json(&body.0)?;
    check_slug(&input.id, "id")?;
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::invalid("name", "name must be 1-200 bytes"));
    }
    let key = idempotency::key_of(&req, &p.user_id, &body.0)?;
    let mut tx = pool.begin().await?;
    if let Some(saved) = idempotency::replay(&mut tx, key.as_ref()).await? {
        return Ok(saved);
    }
    let city_exists: bool =
        sqlx::query_scalar("select exists(select 1 from city where id = $1)").bind(&input.city_id).fetch_one(&mut *tx).await?;
    if !city_exists {
        return Err(ApiError::unprocessable("unknown_city", "city_id", format!("no city '{}'", input.city_id)));
    }
    sqlx::query("insert into team (id, city_id, name) values ($1, $2, $3)")
        .bind(&input.id)
        .bind(&input.city_id)
        .bind(&input.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_db_conflict(e, "id", "team"))?;
    audit::record(&mut tx, Some(&p.user_id), "team.create", "team", &input.id, Some(&input.city_id), serde_json::json!({})).await?;
    let body = serde_json::json!({"id": input.id, "city_id": input.city_id, "name": input.name});
    let resp = idempotency::respond(&mut tx, key.as_ref(), StatusCode::CREATED, body).await?;
    tx.commit().await?;
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "people", responses((status = 200, description = "{items: [team]}")))]
pub async fn list_teams(p: Principal, pool: web::Data<PgPool>) -> Result<HttpResponse, ApiError> {
    let scope = p.scope();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("select id, city_id, name from team where ($1::text is null or city_id = $1) order by id")
            .bind(&scope.city_id)
            .fetch_all(pool.get_ref())
            .await?;
    let items: Vec<_> =
        rows.into_iter().map(|(id, city_id, name)| serde_json::json!({"id": id, "city_id": city_id, "name": name})).collect();
    Ok(list_response(items, None))
}
