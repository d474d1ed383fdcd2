//! Redis Streams operations used by producers and consumer groups.

use redis::AsyncCommands;
use redis::aio::ConnectionLike;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use super::Message;

/// One entry read from a stream.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// The outbox id that produced it (the de-duplication key).
    pub oid: String,
    /// `None` when the payload could not be parsed (a poison message: acked and logged).
    pub message: Option<Message>,
}

fn entry_of(s: StreamId) -> Entry {
    let text = |k: &str| match s.map.get(k) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(t)) => t.clone(),
        _ => String::new(),
    };
    let oid = text("oid");
    let message = serde_json::from_str(&text("m")).ok();
    Entry { id: s.id, oid, message }
}

/// XADDs many entries in one pipeline; `(stream key, outbox id, message json)`.
pub async fn xadd_many<C: ConnectionLike + Send>(conn: &mut C, entries: &[(String, i64, String)]) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (key, oid, json) in entries {
        pipe.cmd("XADD").arg(key).arg("*").arg("oid").arg(oid).arg("m").arg(json).ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// Creates the consumer group (and the stream) if missing.
pub async fn ensure_group<C: ConnectionLike + Send>(conn: &mut C, key: &str, group: &str) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP").arg("CREATE").arg(key).arg(group).arg("0").arg("MKSTREAM").query_async(conn).await;
    match r {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// XREADGROUP from one stream. `id` is `>` for new entries or `0` for this consumer's pending ones.
pub async fn read_group<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    group: &str,
    consumer: &str,
    id: &str,
    count: usize,
    block_ms: Option<u64>,
) -> redis::RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(group).arg(consumer).arg("COUNT").arg(count);
    if let Some(ms) = block_ms {
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(key).arg(id);
    let reply: Option<StreamReadReply> = cmd.query_async(conn).await?;
    Ok(reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).map(entry_of).collect()).unwrap_or_default())
}

/// Takes over entries idle for `min_idle_ms` from any consumer of the group.
pub async fn autoclaim<C: ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    group: &str,
    consumer: &str,
    min_idle_ms: u64,
    count: usize,
) -> redis::RedisResult<Vec<Entry>> {
    let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(key)
        .arg(group)
        .arg(consumer)
        .arg(min_idle_ms)
        .arg("0-0")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(reply.claimed.into_iter().map(entry_of).collect())
}

pub async fn ack<C: ConnectionLike + Send + AsyncCommands>(conn: &mut C, key: &str, group: &str, ids: &[String]) -> redis::RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let _: i64 = conn.xack(key, group, ids).await?;
    Ok(())
}

/// Trims entries older than the oldest pending one of `group` (never drops pending entries),
/// keeping everything if the group has none pending and the stream was just read.
pub async fn trim_acked<C: ConnectionLike + Send>(conn: &mut C, key: &str, group: &str) -> redis::RedisResult<()> {
    // XPENDING summary: [count, smallest id, greatest id, consumers]
    let summary: redis::Value = redis::cmd("XPENDING").arg(key).arg(group).query_async(conn).await?;
    let min_pending = match summary {
        redis::Value::Array(items) => match items.get(1) {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        },
        _ => None,
    };
    // without pending entries, trim up to the group's last delivered id
    let bound = match min_pending {
        Some(id) => id,
        None => {
            let groups: redis::Value = redis::cmd("XINFO").arg("GROUPS").arg(key).query_async(conn).await?;
            match last_delivered(&groups, group) {
                Some(id) => next_id(&id),
                None => return Ok(()),
            }
        }
    };
    redis::cmd("XTRIM").arg(key).arg("MINID").arg("~").arg(bound).query_async::<i64>(conn).await?;
    Ok(())
}

fn last_delivered(groups: &redis::Value, group: &str) -> Option<String> {
    let redis::Value::Array(groups) = groups else { return None };
    for g in groups {
        let fields: Vec<(String, String)> = match g {
            redis::Value::Array(kv) => kv
                .chunks(2)
                .filter_map(|c| match (&c[0], c.get(1)) {
                    (redis::Value::BulkString(k), Some(redis::Value::BulkString(v))) => {
                        Some((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
                    }
                    _ => None,
                })
                .collect(),
            redis::Value::Map(kv) => kv
                .iter()
                .filter_map(|(k, v)| match (k, v) {
                    (redis::Value::BulkString(k), redis::Value::BulkString(v)) => {
                        Some((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
                    }
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        if fields.iter().any(|(k, v)| k == "name" && v == group) {
            return fields.into_iter().find(|(k, _)| k == "last-delivered-id").map(|(_, v)| v);
        }
    }
    None
}

fn next_id(id: &str) -> String {
    match id.split_once('-') {
        Some((ms, seq)) => format!("{ms}-{}", seq.parse::<u64>().unwrap_or(0) + 1),
        None => id.to_string(),
    }
}
