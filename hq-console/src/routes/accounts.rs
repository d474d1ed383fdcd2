//! Accounts: bulk import (JSON array or NDJSON), each placed in its city and territory by
//! point-in-polygon; rows that cannot be placed or are invalid come back in `rejected`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::domain::{check_lat_lon, check_slug};
use fieldops_core::platform::error::ApiError;
use fieldops_core::platform::http::LimitedBody;
use fieldops_core::store::audit;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub owner_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AccountOut {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub city_id: String,
    pub territory_id: Option<String>,
    pub owner_id: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: sqlx::types::Json<Value>,
}

fn split_items(body: &[u8], ndjson: bool) -> Result<Vec<Result<Value, ApiError>>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("malformed_json", "body is not UTF-8"))?;
    let trimmed = text.trim_start();
    if !ndjson && trimmed.starts_with('[') {
        let items: Vec<Value> = fieldops_core::platform::http::parse_json(body)?;
        return Ok(items.into_iter().map(Ok).collect());
    }
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).map_err(|e| ApiError::bad_request("malformed_json", format!("line is not JSON: {e}"))))
        .collect())
}

fn check(a: &AccountIn) -> Result<(), ApiError> {
    check_slug(&a.id, "id")?;
    if a.name.trim().is_empty() || a.name.len() > 300 {
        return Err(ApiError::invalid("name", "name must be 1-300 bytes"));
    }
    check_lat_lon(a.lat, a.lon, "")?;
    for (k, v) in &a.attributes {
        if matches!(v, Value::Object(_) | Value::Array(_)) {
            return Err(ApiError::invalid(format!("attributes.{k}"), "attributes are strings, numbers, booleans or null"));
        }
    }
    Ok(())
}

fn error_json(e: &ApiError) -> Value {
    json!({"code": e.code, "message": e.message, "field": e.field})
}

#[utoipa::path(post, path = "/api/v1/accounts/import", tag = "geography",
    request_body(content = Vec<AccountIn>, description = "JSON array, or NDJSON with Content-Type application/x-ndjson"),
    responses((status = 200, description = "{imported: n, rejected: [{index, error}]}"), (status = 400), (status = 413)))]
pub async fn import(req: HttpRequest, p: Principal, pool: web::Data<PgPool>, body: LimitedBody) -> Result<HttpResponse, ApiError> {
    p.require(&[Role::Admin, Role::HqStrategist])?;
    let ndjson = req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("ndjson"));
    let items = split_items(&body.0, ndjson)?;
    if items.len() > 100_000 {
        return Err(ApiError::new(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE, "too_many_items", "at most 100000 accounts per import"));
    }
    let index = super::geography::load_index(&pool).await?;
    let owners: HashMap<String, (String, String)> = {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("select id, role, city_id from app_user where role = 'agent'").fetch_all(pool.get_ref()).await?;
        rows.into_iter().map(|(id, role, city)| (id, (role, city.unwrap_or_default()))).collect()
    };
    let mut rejected = Vec::new();
    let mut good: Vec<(AccountIn, String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index_no, item) in items.into_iter().enumerate() {
        let parsed = item.and_then(|v| fieldops_core::platform::http::from_value::<AccountIn>(v));
        let placed = parsed.and_then(|a| {
            check(&a)?;
            if !seen.insert(a.id.clone()) {
                return Err(ApiError::invalid("id", format!("account '{}' appears twice in this import", a.id)));
            }
            let zone = index
                .locate(a.lat, a.lon)
                .ok_or_else(|| ApiError::unprocessable("outside_territories", "lat", "the location is inside no territory of any city"))?;
            if let Some(owner) = &a.owner_id {
                match owners.get(owner) {
                    None => return Err(ApiError::unprocessable("unknown_owner", "owner_id", format!("no agent '{owner}'"))),
                    Some((_, city)) if city != &zone.city_id => {
                        return Err(ApiError::unprocessable(
                            "owner_city_mismatch",
                            "owner_id",
                            format!("agent '{owner}' works in '{city}', the account is in '{}'", zone.city_id),
                        ));
                    }
                    _ => {}
                }
            }
            Ok((zone.city_id.clone(), zone.id.clone(), a))
        });
        match placed {
            Ok((city, territory, a)) => good.push((a, city, territory)),
            Err(e) => rejected.push(json!({"index": index_no, "error": error_json(&e)})),
        }
    }
    let mut tx = pool.begin().await?;
    for chunk in good.chunks(5_000) {
        let ids: Vec<&str> = chunk.iter().map(|(a, _, _)| a.id.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|(a, _, _)| a.name.as_str()).collect();
        let lats: Vec<f64> = chunk.iter().map(|(a, _, _)| a.lat).collect();
        let lons: Vec<f64> = chunk.iter().map(|(a, _, _)| a.lon).collect();
        let cities: Vec<&str> = chunk.iter().map(|(_, c, _)| c.as_str()).collect();
        let terrs: Vec<&str> = chunk.iter().map(|(_, _, t)| t.as_str()).collect();
        let owners: Vec<Option<&str>> = chunk.iter().map(|(a, _, _)| a.owner_id.as_deref()).collect();
        let attrs: Vec<Value> = chunk.iter().map(|(a, _, _)| Value::Object(a.attributes.clone())).collect();
        sqlx::query(
            "insert into account (id, name, lat, lon, city_id, territory_id, owner_id, attributes)
             select * from unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
             on conflict (id) do update set name = excluded.name, lat = excluded.lat, lon = excluded.lon, city_id = excluded.city_id,
               territory_id = excluded.territory_id, owner_id = excluded.owner_id, attributes = excluded.attributes, updated_at = now()",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&lats)
        .bind(&lons)
        .bind(&cities)
        .bind(&terrs)
        .bind(&owners)
        .bind(&attrs)
        .execute(&mut *tx)
        .await?;
    }
    // the attribute catalogue rule filters are checked against
    let mut catalogue: std::collections::BTreeMap<&str, &str> = Default::default();
    for (a, _, _) in &good {
        for (k, v) in &a.attributes {
            let ty = match v {
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                _ => continue,
            };
            catalogue.entry(k.as_str()).or_insert(ty);
        }
    }
    if !catalogue.is_empty() {
        let (keys, tys): (Vec<&str>, Vec<&str>) = catalogue.into_iter().unzip();
        sqlx::query("insert into account_attribute (key, ty) select * from unnest($1::text[], $2::text[]) on conflict do nothing")
            .bind(&keys)
            .bind(&tys)
            .execute(&mut *tx)
            .await?;
    }
    audit::record(
        &mut tx,
        Some(&p.user_id),
        "accounts.import",
        "account",
        "*",
        None,
        json!({"imported": good.len(), "rejected": rejected.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({"imported": good.len(), "rejected": rejected})))
}

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "geography", responses((status = 200, body = AccountOut), (status = 404)))]
pub async fn get(p: Principal, pool: web::Data<PgPool>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let scope = p.scope();
    let account: Option<AccountOut> = sqlx::query_as(
        "select id, name, lat, lon, city_id, territory_id, owner_id, attributes from account
         where id = $1 and ($2::text is null or city_id = $2) and ($3 <> 'agent' or owner_id = $4 or owner_id is null)",
    )
    .bind(path.as_str())
    .bind(&scope.city_id)
    .bind(scope.role)
    .bind(&scope.user_id)
    .fetch_optional(pool.get_ref())
    .await?;
    account.map(|a| HttpResponse::Ok().json(a)).ok_or_else(|| ApiError::not_found("account"))
}
