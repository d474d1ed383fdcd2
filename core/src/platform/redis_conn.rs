//! Redis connections. One shared `ConnectionManager` for short commands; each blocking consumer
//! opens its own connection (a blocking XREADGROUP would stall every command multiplexed with it).
//! Response timeouts sit above the BLOCK time (redis-rs default 500 ms would fail the read).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use super::config::RedisSettings;

pub fn client(settings: &RedisSettings) -> anyhow::Result<redis::Client> {
    redis::Client::open(settings.url.expose_secret()).map_err(|e| anyhow::anyhow!("redis.url is not a valid Redis URL: {e}"))
}

pub async fn manager(client: &redis::Client, block_ms: u64) -> anyhow::Result<ConnectionManager> {
    let cfg = ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_millis(block_ms + 5_000)))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    Ok(ConnectionManager::new_with_config(client.clone(), cfg).await?)
}
