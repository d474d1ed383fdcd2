//! Wake-ups for the polling loops: PostgreSQL NOTIFY on a channel, with a poll interval as the
//! fallback (a missed notification only delays work by one interval).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

pub struct Wake {
    listener: Option<PgListener>,
    interval: Duration,
}

impl Wake {
    pub async fn new(pool: &sqlx::PgPool, channel: &str, interval: Duration) -> Wake {
        let listener = match PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen(channel).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no listener connection; polling only");
                None
            }
        };
        Wake { listener, interval }
    }

    /// Waits for a notification, the poll interval, or shutdown. Returns false on shutdown.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let interval = self.interval;
        match &mut self.listener {
            Some(l) => tokio::select! {
                _ = shutdown.cancelled() => false,
                r = l.recv() => {
                    if r.is_err() { tokio::time::sleep(interval).await; }
                    true
                }
                _ = tokio::time::sleep(interval) => true,
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => false,
                _ = tokio::time::sleep(interval) => true,
            },
        }
    }
}
