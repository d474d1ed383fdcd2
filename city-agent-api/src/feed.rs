//! Live feeds. Events about tasks are published on a Redis pub/sub channel so that every
//! city-agent-api replica hears them; each replica fans them out to its own SSE connections,
//! filtered by who may see the task (the assignee, the team for pool tasks, the city's managers).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use fieldops_core::auth::{Principal, Role};
use fieldops_core::platform::app::Shared;
use futures::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One live event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `task.assigned`, `task.updated`, `task.cancelled`
    pub event: String,
    pub task_id: String,
    pub city_id: String,
    pub team_id: String,
    pub assignee_id: Option<String>,
    /// Who it was taken from, on a re-assignment (they get `task.cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_assignee_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub title: String,
}

impl Event {
    pub fn visible_to(&self, p: &Principal) -> bool {
        match p.role {
            Role::Agent => {
                self.assignee_id.as_deref() == Some(&p.user_id)
                    || self.previous_assignee_id.as_deref() == Some(&p.user_id)
                    || (self.assignee_id.is_none()
                        && p.team_id.as_deref() == Some(&self.team_id)
                        && p.city_id.as_deref() == Some(&self.city_id))
            }
            Role::CityManager => p.city_id.as_deref() == Some(&self.city_id),
            _ => true,
        }
    }
}

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub { tx: broadcast::channel(4096).0 }
    }
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

/// Publishes events to every replica (best effort: the database already holds the truth and
/// an app that reconnects re-reads its task list).
pub async fn publish(shared: &Shared, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let mut conn = shared.redis.clone();
    let channel = shared.keys.agent_events();
    let payload = serde_json::to_string(events).expect("events serialise");
    if let Err(e) = conn.publish::<_, _, i64>(channel, payload).await {
        tracing::warn!(error = %e, "publishing live events failed");
    }
}

/// Listens on the channel and feeds the local hub; reconnects on failure.
pub async fn subscribe(shared: Shared, hub: Hub) {
    let channel = shared.keys.agent_events();
    while !shared.shutdown.is_cancelled() {
        let result: anyhow::Result<()> = async {
            let mut pubsub = shared.redis_client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            let mut stream = pubsub.on_message();
            loop {
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return Ok(()),
                    msg = stream.next() => {
                        let Some(msg) = msg else { anyhow::bail!("pub/sub connection closed") };
                        let payload: String = msg.get_payload()?;
                        if let Ok(events) = serde_json::from_str::<Vec<Event>>(&payload) {
                            for e in events {
                                let _ = hub.tx.send(e);
                            }
                        }
                    }
                }
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "live feed subscription lost; reconnecting");
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// `GET /api/v1/stream`: Server-Sent Events for the caller. A `ready` event opens the stream;
/// comments keep it alive every 15 s; it ends when the service shuts down.
#[utoipa::path(get, path = "/api/v1/stream", tag = "field",
    responses((status = 200, content_type = "text/event-stream", description = "events task.assigned, task.updated, task.cancelled; data is the event JSON")))]
pub async fn stream(p: Principal, hub: web::Data<Hub>, shared: web::Data<Shared>) -> HttpResponse {
    let rx = hub.subscribe();
    let shutdown = shared.shutdown.clone();
    let opening = futures::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b"event: ready\ndata: {}\n\n")) });
    let events = futures::stream::unfold((rx, p, shutdown), |(mut rx, p, shutdown)| async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = tokio::time::timeout(Duration::from_secs(15), rx.recv()) => r,
            };
            match next {
                Err(_) => return Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": keep-alive\n\n")), (rx, p, shutdown))),
                Ok(Ok(e)) if e.visible_to(&p) => {
                    let name = if e.previous_assignee_id.as_deref() == Some(&p.user_id) && p.role == Role::Agent {
                        "task.cancelled"
                    } else {
                        e.event.as_str()
                    };
                    let frame = format!("event: {name}\ndata: {}\n\n", serde_json::to_string(&e).unwrap_or_default());
                    return Some((Ok(web::Bytes::from(frame)), (rx, p, shutdown)));
                }
                Ok(Ok(_)) => continue,
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    let frame = format!("event: resync\ndata: {{\"missed\": {n}}}\n\n");
                    return Some((Ok(web::Bytes::from(frame)), (rx, p, shutdown)));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(opening.chain(events))
}
