//! Authentication and authorisation: argon2 password hashes, HS256 tokens accepted by every
//! service, and the caller's [`Principal`] (role, city, team) as an actix extractor.
//! Store functions that read city data take a [`Scope`] and filter in SQL.

mod login;
mod password;
mod token;

pub use login::{LoginRequest, bootstrap_admin, login};
pub use password::{hash_password, verify_password};
pub use token::{Claims, TokenKeys};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::{Ready, ready};
use serde::{Deserialize, Serialize};

use crate::platform::error::ApiError;

pub const COOKIE_NAME: &str = "fieldops_token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    HqStrategist,
    Coo,
    CityManager,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::HqStrategist => "hq_strategist",
            Role::Coo => "coo",
            Role::CityManager => "city_manager",
            Role::Agent => "agent",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "hq_strategist" => Role::HqStrategist,
            "coo" => Role::Coo,
            "city_manager" => Role::CityManager,
            "agent" => Role::Agent,
            _ => return None,
        })
    }
    /// HQ roles see every city.
    pub fn is_hq(self) -> bool {
        matches!(self, Role::Admin | Role::HqStrategist | Role::Coo)
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    pub city_id: Option<String>,
    pub team_id: Option<String>,
}

impl Principal {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) { Ok(()) } else { Err(ApiError::forbidden()) }
    }
    pub fn scope(&self) -> Scope {
        Scope {
            user_id: self.user_id.clone(),
            role: self.role.as_str(),
            city_id: if self.role.is_hq() { None } else { self.city_id.clone() },
            team_id: self.team_id.clone(),
        }
    }
}

/// What a query may see, bound into SQL as `$role`, `$city`, `$user`, `$team`.
/// `city_id` is `None` only for HQ roles (every city).
#[derive(Debug, Clone)]
pub struct Scope {
    pub user_id: String,
    pub role: &'static str,
    pub city_id: Option<String>,
    pub team_id: Option<String>,
}

impl Scope {
    pub fn is_hq(&self) -> bool {
        matches!(self.role, "admin" | "hq_strategist" | "coo")
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal_of(req))
    }
}

fn principal_of(req: &HttpRequest) -> Result<Principal, ApiError> {
    let keys =
        req.app_data::<web::Data<TokenKeys>>().ok_or_else(|| ApiError::internal(anyhow::anyhow!("TokenKeys missing from app data")))?;
    let token = match req.headers().get(actix_web::http::header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| ApiError::unauthorized("bad Authorization header"))?;
            v.strip_prefix("Bearer ").ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?.trim().to_string()
        }
        None => req
            .cookie(COOKIE_NAME)
            .map(|c| c.value().to_string())
            .ok_or_else(|| ApiError::unauthorized("no token: log in at POST /api/v1/auth/login"))?,
    };
    let claims = keys.decode(&token)?;
    let role = Role::parse(&claims.role).ok_or_else(|| ApiError::unauthorized("token has an unknown role"))?;
    Ok(Principal { user_id: claims.sub, role, city_id: claims.city, team_id: claims.team })
}
