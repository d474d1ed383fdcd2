//! Writing to the outbox inside the caller's transaction.

use sqlx::PgConnection;

use super::{FEEDBACK_STREAM, Message, Transition};

pub async fn enqueue(conn: &mut PgConnection, stream: &str, message: &Message) -> Result<(), sqlx::Error> {
    sqlx::query("insert into outbox (stream, payload) values ($1, $2)").bind(stream).bind(sqlx::types::Json(message)).execute(conn).await?;
    Ok(())
}

/// Many messages in one statement.
pub async fn enqueue_many(conn: &mut PgConnection, items: &[(String, Message)]) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let streams: Vec<&str> = items.iter().map(|(s, _)| s.as_str()).collect();
    let payloads: Vec<serde_json::Value> = items.iter().map(|(_, m)| serde_json::to_value(m).expect("messages serialise")).collect();
    sqlx::query("insert into outbox (stream, payload) select * from unnest($1::text[], $2::jsonb[])")
        .bind(&streams)
        .bind(&payloads)
        .execute(conn)
        .await?;
    Ok(())
}

/// Announces task transitions to the feedback stream (skips an empty list).
pub async fn transitions(conn: &mut PgConnection, items: Vec<Transition>) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    enqueue(conn, FEEDBACK_STREAM, &Message::TasksTransitioned { items }).await
}
