use serde::Serialize;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub role: String,
    pub city_id: Option<String>,
    pub team_id: Option<String>,
    pub home_lat: Option<f64>,
    pub home_lon: Option<f64>,
}

/// A user on the wire (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub city_id: Option<String>,
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<crate::domain::LatLon>,
}

impl UserRow {
    pub fn to_out(&self) -> UserOut {
        UserOut {
            id: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role.clone(),
            city_id: self.city_id.clone(),
            team_id: self.team_id.clone(),
            home: match (self.home_lat, self.home_lon) {
                (Some(lat), Some(lon)) => Some(crate::domain::LatLon { lat, lon }),
                _ => None,
            },
        }
    }
}

pub const USER_COLUMNS: &str = "id, username, password_hash, display_name, role, city_id, team_id, home_lat, home_lon";

pub async fn by_username(pool: &PgPool, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {USER_COLUMNS} from app_user where username = $1")))
        .bind(username)
        .fetch_optional(pool)
        .await
}
