use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::platform::config::AuthSettings;
use crate::platform::error::ApiError;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub city: Option<String>,
    pub team: Option<String>,
    pub exp: i64,
    pub iat: i64,
}

/// HS256 keys from `auth.token_secret`; shared by both HTTP services so a token from one works on the other.
pub struct TokenKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    pub ttl: chrono::Duration,
}

impl TokenKeys {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<TokenKeys> {
        let secret = settings.token_secret.expose_secret().as_bytes();
        let ttl = crate::domain::Duration::parse(&settings.token_ttl).map_err(|e| anyhow::anyhow!(e))?.0;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys { enc: EncodingKey::from_secret(secret)?, dec: DecodingKey::from_secret(secret)?, validation, ttl })
    }

    pub fn issue(&self, sub: &str, role: &str, city: Option<String>, team: Option<String>) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let exp = now + self.ttl;
        let claims = Claims { sub: sub.into(), role: role.into(), city, team, exp: exp.timestamp(), iat: now.timestamp() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)?;
        Ok((token, exp))
    }

    pub fn decode(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::unauthorized("token expired"),
            _ => ApiError::unauthorized("invalid token"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> TokenKeys {
        let settings = AuthSettings {
            token_secret: secret.to_string().into(),
            token_ttl: "1h".into(),
            bootstrap_admin_username: String::new(),
            bootstrap_admin_password: String::new().into(),
            cookie_secure: true,
        };
        TokenKeys::new(&settings).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_expired_or_foreign_ones_are_refused() {
        let k = keys(&"a".repeat(40));
        let (token, exp) = k.issue("usr_1", "agent", Some("shanghai".into()), Some("t1".into())).unwrap();
        assert!(exp > Utc::now());
        let c = k.decode(&token).unwrap();
        assert_eq!((c.sub.as_str(), c.role.as_str(), c.city.as_deref()), ("usr_1", "agent", Some("shanghai")));
        let old = Claims { sub: "usr_1".into(), role: "agent".into(), city: None, team: None, exp: Utc::now().timestamp() - 3600, iat: 0 };
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &k.enc).unwrap();
        assert_eq!(k.decode(&expired).unwrap_err().message, "token expired");
        let other = keys(&"b".repeat(40));
        let (foreign, _) = other.issue("usr_1", "admin", None, None).unwrap();
        assert_eq!(k.decode(&foreign).unwrap_err().code, "unauthorized", "a token signed with another secret");
    }
}
