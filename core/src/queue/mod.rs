//! The queues between processes: Redis Streams fed by a PostgreSQL transactional outbox.
//!
//! Design:
//! - A change and the message announcing it are written in ONE PostgreSQL transaction (an
//!   `outbox` row). The dispatcher's relay moves outbox rows to Redis with `XADD` and deletes
//!   them in the transaction that claimed them (`FOR UPDATE SKIP LOCKED`, so relays can run on
//!   several replicas). A crash after XADD and before the delete re-sends the row: consumers are
//!   idempotent, so that is harmless; a crash before XADD loses nothing.
//! - Streams: `<prefix>{city:<id>}:tasks`, one per city (the hash tag keeps each city's stream on
//!   one Redis Cluster slot), read by city-agent-api delivery workers through the consumer group
//!   `delivery`; `<prefix>{feedback}`, read by the dispatcher through the group `dispatcher`.
//! - Each entry has the fields `oid` (the outbox id, the de-duplication key) and `m` (the JSON
//!   [`Message`]). Consumers ack only after their database commit; entries left pending by a dead
//!   consumer are taken over with `XAUTOCLAIM` after `delivery.reclaim_idle_ms`.
//! - Trimming uses `MINID` below the oldest pending id, never `MAXLEN` (which would drop entries
//!   still pending in a group).

pub mod outbox;
pub mod streams;

use serde::{Deserialize, Serialize};

/// Every message on a stream: serde-tagged and versioned in its tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum Message {
    /// Tasks of one city were materialised; deliver them.
    #[serde(rename = "tasks.created.v1")]
    TasksCreated { directive_id: String, city_id: String, task_ids: Vec<String> },
    /// Tasks of one city were cancelled; tell the agents' feeds.
    #[serde(rename = "tasks.cancelled.v1")]
    TasksCancelled { directive_id: String, city_id: String, task_ids: Vec<String> },
    /// Task state changes, aggregated per (directive, city, from, to), for the rollups.
    #[serde(rename = "tasks.transitioned.v1")]
    TasksTransitioned { items: Vec<Transition> },
    /// A field report was stored.
    #[serde(rename = "report.created.v1")]
    ReportCreated { report_id: String, kind: String, city_id: String, territory_id: Option<String>, directive_id: Option<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    pub directive_id: String,
    pub city_id: String,
    pub from: Option<String>,
    pub to: String,
    pub n: i64,
}

/// Stream and channel names under one installation's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Keys {
        Keys { prefix: prefix.into() }
    }
    pub fn city_tasks(&self, city_id: &str) -> String {
        format!("{}{{city:{city_id}}}:tasks", self.prefix)
    }
    pub fn feedback(&self) -> String {
        format!("{}{{feedback}}", self.prefix)
    }
    /// Pub/sub channel of live agent-feed events, fanned out to every city-agent-api replica.
    pub fn agent_events(&self) -> String {
        format!("{}agent-events", self.prefix)
    }
    /// Pub/sub channel of execution events for HQ dashboards.
    pub fn hq_events(&self) -> String {
        format!("{}hq-events", self.prefix)
    }
}

/// Logical stream names stored in the outbox (resolved to keys by the relay).
pub fn city_stream(city_id: &str) -> String {
    format!("city:{city_id}")
}
pub const FEEDBACK_STREAM: &str = "feedback";

impl Keys {
    pub fn resolve(&self, logical: &str) -> String {
        match logical.strip_prefix("city:") {
            Some(city) => self.city_tasks(city),
            None => self.feedback(),
        }
    }
}

/// Aggregates single task transitions into [`Transition`] counts.
pub fn aggregate<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>, &'a str)>) -> Vec<Transition> {
    let mut map: std::collections::BTreeMap<(String, String, Option<String>, String), i64> = Default::default();
    for (d, c, from, to) in rows {
        *map.entry((d.to_string(), c.to_string(), from.map(str::to_string), to.to_string())).or_default() += 1;
    }
    map.into_iter().map(|((directive_id, city_id, from, to), n)| Transition { directive_id, city_id, from, to, n }).collect()
}
