//! The audit log: who did what, when.

use sqlx::PgConnection;

pub async fn record(
    conn: &mut PgConnection,
    actor_id: Option<&str>,
    action: &str,
    object_type: &str,
    object_id: &str,
    city_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("insert into audit_event (actor_id, action, object_type, object_id, city_id, detail) values ($1, $2, $3, $4, $5, $6)")
        .bind(actor_id)
        .bind(action)
        .bind(object_type)
        .bind(object_id)
        .bind(city_id)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}
