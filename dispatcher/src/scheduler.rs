//! The cron scheduler. A cron rule stores its next occurrence (`cron_next_at`); the scheduler
//! takes due rules with `FOR UPDATE SKIP LOCKED`, and for every occurrence up to now records a
//! `rule_firing` keyed by (rule, local wall-clock time) — the key makes each occurrence fire once
//! even with several dispatchers and across a repeated DST hour. Occurrences older than
//! `rules.catch_up_window` (missed while every dispatcher was down) are recorded as skipped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fieldops_core::domain::Trigger;
use fieldops_core::platform::app::Shared;
use fieldops_core::rules::schedule::Schedule;
use fieldops_core::store::rules::{self, RULE_COLUMNS, RuleRow};
use serde_json::json;
use sqlx::PgPool;

/// At most this many occurrences of one rule are handled per round (the rest in the next).
const MAX_PER_ROUND: usize = 500;

pub async fn run(shared: Shared) {
    let catch_up = fieldops_core::domain::Duration::parse(&shared.settings.rules.catch_up_window)
        .map(|d| d.0)
        .unwrap_or(chrono::Duration::minutes(15));
    let tick = Duration::from_millis(shared.settings.rules.scheduler_tick_ms);
    loop {
        if let Err(e) = fire_due(&shared.db, Utc::now(), catch_up).await {
            tracing::warn!(error = ?e, "cron scheduler round failed");
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Handles every cron occurrence due at `now`; returns how many directives were made.
pub async fn fire_due(db: &PgPool, now: DateTime<Utc>, catch_up: chrono::Duration) -> anyhow::Result<usize> {
    let mut fired = 0;
    loop {
        let mut tx = db.begin().await?;
        let rule: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {RULE_COLUMNS} from rule where trigger_kind = 'cron' and enabled and deleted_at is null and cron_next_at <= $1
             order by cron_next_at limit 1 for update skip locked"
        )))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(rule) = rule else { return Ok(fired) };
        let due_from = rule.cron_next_at.expect("selected by cron_next_at");
        let Trigger::Cron { cron, timezone } = &rule.body.0.trigger else {
            sqlx::query("update rule set cron_next_at = null where id = $1").bind(&rule.id).execute(&mut *tx).await?;
            tx.commit().await?;
            continue;
        };
        let schedule = Schedule::parse(cron, timezone).map_err(|e| anyhow::anyhow!("rule {}: {}", rule.id, e.message))?;
        let occurrences = schedule.between(due_from - chrono::Duration::milliseconds(1), now, MAX_PER_ROUND);
        for occ in &occurrences {
            let fire = now - occ.at <= catch_up;
            let inserted = sqlx::query(
                "insert into rule_firing (rule_id, firing_key, occurrence_at, status, reason) values ($1, $2, $3, $4, $5) on conflict do nothing",
            )
            .bind(&rule.id)
            .bind(format!("cron:{}", occ.key))
            .bind(occ.at)
            .bind(if fire { "fired" } else { "skipped" })
            .bind((!fire).then(|| format!("missed by more than the catch-up window ({} s)", catch_up.num_seconds())))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if inserted && fire {
                let target = rule.body.0.target.clone();
                let directive =
                    rules::fire(&mut tx, &rule, &target, None, json!({"by": "cron", "occurrence": occ.local.to_rfc3339()})).await?;
                sqlx::query("update rule_firing set directive_id = $3 where rule_id = $1 and firing_key = $2")
                    .bind(&rule.id)
                    .bind(format!("cron:{}", occ.key))
                    .bind(&directive)
                    .execute(&mut *tx)
                    .await?;
                fired += 1;
                tracing::info!(rule.id = %rule.id, directive.id = %directive, occurrence = %occ.local, "cron rule fired");
            } else if inserted {
                tracing::warn!(rule.id = %rule.id, occurrence = %occ.local, "cron occurrence skipped (outside the catch-up window)");
            }
        }
        let resume_after = match occurrences.last() {
            Some(last) if occurrences.len() == MAX_PER_ROUND => last.at,
            _ => now,
        };
        let next = schedule.next_after(resume_after).map(|o| o.at);
        sqlx::query("update rule set cron_next_at = $2 where id = $1").bind(&rule.id).bind(next).execute(&mut *tx).await?;
        tx.commit().await?;
    }
}
