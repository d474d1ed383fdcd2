//! Layered configuration: the defaults file (`config/base.toml`, compiled in), an optional overlay
//! file named by `FIELDOPS_CONFIG`, then `FIELDOPS__SECTION__KEY` environment variables.
//! `validate()` runs at load; secrets are `SecretString` and never printed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const BASE: &str = include_str!("../../../config/base.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub dispatch: DispatchSettings,
    pub delivery: DeliverySettings,
    pub field: FieldSettings,
    pub rules: RulesSettings,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub import_max_body_bytes: usize,
    pub max_photo_bytes: usize,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token_secret: SecretString,
    pub token_ttl: String,
    pub bootstrap_admin_username: String,
    pub bootstrap_admin_password: SecretString,
    pub cookie_secure: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DispatchSettings {
    pub batch_size: usize,
    pub relay_batch: i64,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    pub block_ms: u64,
    pub read_count: usize,
    pub reclaim_idle_ms: u64,
    pub consumer_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    pub processed_messages: String,
    pub idempotency_keys: String,
    pub interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RulesSettings {
    pub catch_up_window: String,
    pub scheduler_tick_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldSettings {
    pub checkin_radius_m: f64,
}

impl Settings {
    /// Loads the layers for a service whose default port is `default_port`, then validates.
    pub fn load(default_port: u16) -> anyhow::Result<Settings> {
        Self::load_from(default_port, std::env::var("FIELDOPS_CONFIG").ok(), None)
    }

    /// The layers with an explicit overlay file and, for tests, explicit environment variables
    /// (`None` reads the process environment).
    pub fn load_from(
        default_port: u16,
        overlay: Option<String>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .set_default("http.port", default_port)?
            .add_source(config::File::from_str(BASE, config::FileFormat::Toml));
        if let Some(overlay) = overlay {
            builder = builder.add_source(config::File::with_name(&overlay).required(true));
        }
        let settings: Settings = builder
            .add_source(config::Environment::with_prefix("FIELDOPS").prefix_separator("__").separator("__").try_parsing(true).source(env))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The defaults file alone (tests start from this and override fields).
    pub fn defaults() -> Settings {
        config::Config::builder()
            .set_default("http.port", 0)
            .and_then(|b| b.add_source(config::File::from_str(BASE, config::FileFormat::Toml)).build())
            .and_then(|c| c.try_deserialize())
            .expect("config/base.toml is valid")
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.auth.token_secret.expose_secret().len() < 32 {
            anyhow::bail!("auth.token_secret must be set to at least 32 bytes (FIELDOPS__AUTH__TOKEN_SECRET)");
        }
        crate::domain::Duration::parse(&self.auth.token_ttl).map_err(|e| anyhow::anyhow!("auth.token_ttl: {e}"))?;
        if self.dispatch.batch_size == 0 || self.dispatch.relay_batch <= 0 {
            anyhow::bail!("dispatch.batch_size and dispatch.relay_batch must be positive");
        }
        for (key, value) in [
            ("retention.processed_messages", &self.retention.processed_messages),
            ("retention.idempotency_keys", &self.retention.idempotency_keys),
        ] {
            crate::domain::Duration::parse(value).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        }
        crate::domain::Duration::parse(&self.rules.catch_up_window).map_err(|e| anyhow::anyhow!("rules.catch_up_window: {e}"))?;
        if !(self.field.checkin_radius_m > 0.0) {
            anyhow::bail!("field.checkin_radius_m must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn layers_apply_in_order_defaults_then_overlay_then_environment() {
        let dir = std::env::temp_dir().join(format!("fieldops-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let overlay = dir.join("local.toml");
        std::fs::write(&overlay, "[redis]\nprefix = \"from-overlay:\"\n[http]\nport = 9000\n[field]\ncheckin_radius_m = 150.0\n").unwrap();
        let env = std::collections::HashMap::from([
            ("FIELDOPS__HTTP__PORT".to_string(), "9100".to_string()),
            ("FIELDOPS__AUTH__TOKEN_SECRET".to_string(), "s".repeat(40)),
        ]);
        let s = Settings::load_from(8080, Some(overlay.to_string_lossy().into_owned()), Some(env)).unwrap();
        assert_eq!(s.http.port, 9100, "environment beats the overlay");
        assert_eq!(s.redis.prefix, "from-overlay:", "the overlay beats the defaults");
        assert_eq!(s.field.checkin_radius_m, 150.0);
        assert_eq!(s.dispatch.batch_size, 500, "defaults fill the rest");
        assert_eq!(s.auth.token_secret.expose_secret().len(), 40);
        let no_secret = Settings::load_from(8080, None, Some(Default::default()));
        assert!(no_secret.unwrap_err().to_string().contains("token_secret"), "a missing secret is refused at load");
        let defaults = Settings::load_from(
            8081,
            None,
            Some(std::collections::HashMap::from([("FIELDOPS__AUTH__TOKEN_SECRET".to_string(), "s".repeat(40))])),
        )
        .unwrap();
        assert_eq!(defaults.http.port, 8081, "the service's default port");
        assert!(!format!("{defaults:?}").contains(&"s".repeat(40)), "secrets never appear in Debug output");
        std::fs::remove_dir_all(dir).ok();
    }
}
