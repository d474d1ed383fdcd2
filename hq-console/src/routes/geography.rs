//! Cities and their territories (GeoJSON), with accounts re-placed when a territory set changes.

use actix_web::{HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::domain::check_slug;
use fieldops_core::geo::{TerritoryIndex, Zone, parse_area, parse_stored};
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::{LimitedBody, list_response, parse_json};
use fieldops_core::store::audit;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CityIn {
    pub name_zh: String,
    pub name_en: String,
    pub timezone: String,
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<Value>,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CityOut {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub timezone: String,
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<sqlx::types::Json<Value>>,
}

#[utoipa::path(put, path = "/api/v1/cities/{city_id}", tag = "geography", request_body = CityIn,
    responses((status = 200, body = CityOut), (status = 422)))]
pub async fn put_city(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin, Role::HqStrategist])?;
    let id = path.into_inner();
    check_slug(&id, "city_id")?;
    let input: CityIn = parse_json(&body.0)?;
    for (field, v) in [("name_zh", &input.name_zh), ("name_en", &input.name_en)] {
        if v.trim().is_empty() || v.len() > 200 {
            return Err(ApiError::invalid(field, format!("{field} must be 1-200 bytes")));
        }
    }
    input
        .timezone
        .parse::<chrono_tz::Tz>()
        .map_err(|_| ApiError::unprocessable("unknown_timezone", "timezone", format!("'{}' is not an IANA timezone", input.timezone)))?;
    if let Some(b) = &input.boundary {
        parse_area(b, "boundary")?;
    }
    let mut tx = pool.begin().await?;
    let city: CityOut = sqlx::query_as(
        "insert into city (id, name_zh, name_en, timezone, boundary) values ($1, $2, $3, $4, $5)
         on conflict (id) do update set name_zh = excluded.name_zh, name_en = excluded.name_en,
           timezone = excluded.timezone, boundary = excluded.boundary, updated_at = now()
         returning id, name_zh, name_en, timezone, boundary",
    )
    .bind(&id)
    .bind(&input.name_zh)
    .bind(&input.name_en)
    .bind(&input.timezone)
    .bind(input.boundary.as_ref().map(sqlx::types::Json))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(&mut tx, Some(&p.user_id), "city.put", "city", &id, Some(&id), json!({})).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(city))
}

#[utoipa::path(get, path = "/api/v1/cities", tag = "geography", responses((status = 200, description = "{items: [city]}")))]
pub async fn list_cities(p: Principal, pool: web::Data<PgPool>) -> Result<HttpResponse, ApiError> {
    let scope = p.scope();
    let cities: Vec<CityOut> =
        sqlx::query_as("select id, name_zh, name_en, timezone, boundary from city where ($1::text is null or id = $1) order by id")
            .bind(&scope.city_id)
            .fetch_all(pool.get_ref())
            .await?;
    Ok(list_response(cities, None))
}

#[utoipa::path(get, path = "/api/v1/cities/{city_id}/territories", tag = "geography",
    responses((status = 200, description = "GeoJSON FeatureCollection"), (status = 404)))]
pub async fn get_territories(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let city_id = path.into_inner();
    let scope = p.scope();
    let exists: bool = sqlx::query_scalar("select exists(select 1 from city where id = $1 and ($2::text is null or id = $2))")
        .bind(&city_id)
        .bind(&scope.city_id)
        .fetch_one(pool.get_ref())
        .await?;
    if !exists {
        return Err(ApiError::not_found("city"));
    }
    let rows: Vec<(String, String, Option<String>, sqlx::types::Json<Value>)> =
        sqlx::query_as("select id, name, team_id, geometry from territory where city_id = $1 order by id")
            .bind(&city_id)
            .fetch_all(pool.get_ref())
            .await?;
    let features: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, team_id, geometry)| {
            json!({"type": "Feature", "id": id, "geometry": geometry.0, "properties": {"id": id, "name": name, "team_id": team_id, "city_id": city_id}})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"type": "FeatureCollection", "features": features})))
}

struct TerritoryIn {
    id: String,
    name: String,
    team_id: Option<String>,
    geometry: Value,
    shape: geo::MultiPolygon<f64>,
}

fn parse_collection(body: &[u8]) -> Result<Vec<TerritoryIn>, ApiError> {
    let value: Value = parse_json(body)?;
    // structural check by the geojson crate first (FeatureCollection of Features)
    serde_json::from_value::<geojson::FeatureCollection>(value.clone())
        .map_err(|e| ApiError::unprocessable("invalid_geojson", "features", format!("not a GeoJSON FeatureCollection: {e}")))?;
    let features =
        value.get("features").and_then(Value::as_array).ok_or_else(|| ApiError::invalid("features", "features must be an array"))?;
    let mut out = Vec::with_capacity(features.len());
    let mut seen = std::collections::HashSet::new();
    for (i, f) in features.iter().enumerate() {
        let at = format!("features[{i}]");
        let props = f
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| ApiError::invalid(format!("{at}.properties"), "properties must be an object"))?;
        let id = props
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("{at}.properties.id"), "id (a string) is required"))?;
        check_slug(id, &format!("{at}.properties.id"))?;
        if !seen.insert(id.to_string()) {
            return Err(ApiError::invalid(format!("{at}.properties.id"), format!("duplicate territory id '{id}'")));
        }
        let name = props.get("name").and_then(Value::as_str).unwrap_or(id);
        let team_id = match props.get("team_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => return Err(ApiError::invalid(format!("{at}.properties.team_id"), "team_id must be a string")),
        };
        let geometry = f.get("geometry").cloned().unwrap_or(Value::Null);
        let shape = parse_area(&geometry, &format!("{at}.geometry"))?;
        out.push(TerritoryIn { id: id.to_string(), name: name.to_string(), team_id, geometry, shape });
    }
    Ok(out)
}

#[utoipa::path(put, path = "/api/v1/cities/{city_id}/territories", tag = "geography",
    request_body(content = Object, description = "GeoJSON FeatureCollection; properties {id, name, team_id?}"),
    responses((status = 200, description = "{territories: n, accounts_relocated: n}"), (status = 404), (status = 422)))]
pub async fn put_territories(
    p: Principal,
    pool: web::Data<PgPool>,
    path: web::Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin, Role::HqStrategist])?;
    let city_id = path.into_inner();
    let territories = parse_collection(&body.0)?;
    let mut tx = pool.begin().await?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from city where id = $1 for update)").bind(&city_id).fetch_one(&mut *tx).await?;
    if !exists {
        return Err(ApiError::not_found("city"));
    }
    let teams: Vec<String> = sqlx::query_scalar("select id from team where city_id = $1").bind(&city_id).fetch_all(&mut *tx).await?;
    let ids: Vec<String> = territories.iter().map(|t| t.id.clone()).collect();
    let taken: Vec<(String, String)> = sqlx::query_as("select id, city_id from territory where id = any($1) and city_id <> $2")
        .bind(&ids)
        .bind(&city_id)
        .fetch_all(&mut *tx)
        .await?;
    for (i, t) in territories.iter().enumerate() {
        if let Some(team) = &t.team_id
            && !teams.contains(team)
        {
            return Err(ApiError::unprocessable(
                "unknown_team",
                format!("features[{i}].properties.team_id"),
                format!("no team '{team}' in city '{city_id}'"),
            ));
        }
        if let Some((_, other)) = taken.iter().find(|(id, _)| id == &t.id) {
            return Err(ApiError::conflict("already_exists", format!("territory '{}' belongs to city '{other}'", t.id))
                .with_field(format!("features[{i}].properties.id")));
        }
    }
    sqlx::query("delete from territory where city_id = $1").bind(&city_id).execute(&mut *tx).await?;
    let names: Vec<String> = territories.iter().map(|t| t.name.clone()).collect();
    let team_ids: Vec<Option<String>> = territories.iter().map(|t| t.team_id.clone()).collect();
    let geoms: Vec<Value> = territories.iter().map(|t| t.geometry.clone()).collect();
    sqlx::query(
        "insert into territory (id, city_id, name, team_id, geometry)
         select id, $2, name, team_id, geometry from unnest($1::text[], $3::text[], $4::text[], $5::jsonb[]) as x(id, name, team_id, geometry)",
    )
    .bind(&ids)
    .bind(&city_id)
    .bind(&names)
    .bind(&team_ids)
    .bind(&geoms)
    .execute(&mut *tx)
    .await?;
    // re-place the city's accounts in the new territory set
    let index = TerritoryIndex::new(
        territories.into_iter().map(|t| Zone { id: t.id, city_id: city_id.clone(), team_id: t.team_id, shape: t.shape }).collect(),
    );
    let accounts: Vec<(String, f64, f64, Option<String>)> =
        sqlx::query_as("select id, lat, lon, territory_id from account where city_id = $1").bind(&city_id).fetch_all(&mut *tx).await?;
    let (moved_ids, moved_to): (Vec<String>, Vec<Option<String>>) = accounts
        .into_iter()
        .filter_map(|(id, lat, lon, old)| {
            let new = index.locate(lat, lon).map(|z| z.id.clone());
            (new != old).then_some((id, new))
        })
        .unzip();
    if !moved_ids.is_empty() {
        sqlx::query(
            "update account a set territory_id = x.t, updated_at = now() from unnest($1::text[], $2::text[]) as x(id, t) where a.id = x.id",
        )
        .bind(&moved_ids)
        .bind(&moved_to)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(&mut tx, Some(&p.user_id), "territories.put", "city", &city_id, Some(&city_id), json!({"territories": ids.len()}))
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"territories": ids.len(), "accounts_relocated": moved_ids.len()})))
}

/// Every territory, for placing points.
pub async fn load_index(pool: &PgPool) -> Result<TerritoryIndex, ApiError> {
    let rows: Vec<(String, String, Option<String>, sqlx::types::Json<Value>)> =
        sqlx::query_as("select id, city_id, team_id, geometry from territory").fetch_all(pool).await?;
    let zones = rows
        .into_iter()
        .filter_map(|(id, city_id, team_id, g)| parse_stored(&g.0).map(|shape| Zone { id, city_id, team_id, shape }))
        .collect();
    Ok(TerritoryIndex::new(zones))
}
