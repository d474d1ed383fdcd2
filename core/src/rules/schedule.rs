//! Cron schedules for strategy rules: `{"kind":"cron","cron":"0 0 9 * * Mon","timezone":"Asia/Shanghai"}`.
//!
//! Pure computation (no database, no clock, no I/O): the caller passes the instants.
//!
//! # Expressions
//!
//! Parsed by the `cron` 0.17 crate: 6 fields `sec min hour day-of-month month day-of-week`, or
//! 7 with a trailing `year` (1970–2100), or the shorthands `@yearly @monthly @weekly @daily
//! @hourly`. Two deliberate differences from Unix cron, both checked at parse time:
//!
//! - a 5-field (Unix) expression is refused with "needs a seconds field: try '0 <yours>'";
//! - a *numeric* day-of-week (`1-5`) is refused: the crate counts 1 = Sunday … 7 = Saturday,
//!   Unix cron 1 = Monday, so `1-5` would silently mean Sunday–Thursday. Names (`Mon-Fri`) are
//!   unambiguous; a step (`*/2`) is allowed.
//!
//! Note also: when both day-of-month and day-of-week are restricted, the crate requires BOTH to
//! match (`0 0 9 1 * Mon` = a Monday that is the 1st), where Unix cron fires on either.
//!
//! # Occurrences and keys
//!
//! The expression is matched against the *wall-clock* time of the rule's IANA timezone. Each
//! firing is an [`Occurrence`]: the UTC instant `at`, the same instant in the zone's offset
//! (`local`), and `key` = the local wall-clock time `YYYY-MM-DDTHH:MM:SS` (no offset). Keys of the
//! occurrences of one schedule are distinct and increase with `at`, so the scheduler can insert
//! `(rule, key)` under a unique index and fire each key once, whatever catch-up it does.
//!
//! # Daylight-saving time (decided; see the tests with America/New_York, 2026)
//!
//! The `cron` crate on its own (`Schedule::after(&DateTime<Tz>)`) silently skips a wall-clock time
//! that falls in a spring-forward gap (a daily 02:30 does not fire on 2026-03-08), yields a
//! repeated wall-clock time twice (a daily 01:30 fires at 01:30 EDT *and* 01:30 EST on
//! 2026-11-01), and, started from an instant inside the repeated hour, yields instants earlier
//! than its start. So this module only uses the crate to enumerate wall-clock times (in a zone
//! without transitions) and maps each to an instant itself, following cronie's documented rule
//! ("if time was adjusted one hour forward, those jobs that would have run in the interval that
//! has been skipped will be run immediately. Conversely, if time was adjusted backward, running
//! the same job twice is avoided"):
//!
//! - **Gap (clocks go forward)**: a wall-clock time that does not exist fires once at the first
//!   instant after the gap, i.e. when the clocks show the gap's end. A daily `0 30 2 * * *` fires
//!   on 2026-03-08 at 03:00:00 EDT (07:00Z), key `2026-03-08T03:00:00`. All scheduled times in
//!   one gap collapse into that single firing, which is also merged with an occurrence scheduled
//!   exactly at the gap's end: an hourly schedule fires 01:00 EST, 03:00 EDT, 04:00 EDT; an
//!   every-15-minutes schedule 01:45 EST, 03:00 EDT, 03:15 EDT. No day ever fires twice.
//! - **Overlap (clocks go back)**: a wall-clock time that happens twice fires once, at its
//!   first (earlier, daylight-time) instant, never the second. A daily `0 30 1 * * *` fires on
//!   2026-11-01 at 01:30 EDT (05:30Z) only. An hourly schedule fires 00:00 EDT, 01:00 EDT,
//!   02:00 EST (the second 01:00, 06:00Z, is the same key and does not fire); an
//!   every-15-minutes schedule fires 01:00–01:45 EDT, then nothing until 02:00 EST.
//!
//! `next_after(t)` is consistent with this for any `t`, including an instant inside the repeated
//! hour: it returns the first occurrence with `at > t` (whose key has therefore not fired yet).
//!
//! A schedule that can never fire again (`0 0 0 30 2 *`, or a past year) gives `None` / an empty
//! list; the search is bounded by the crate's last year (2100), it does not loop forever.

use std::fmt;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// The `key` format: local wall-clock time, no offset.
pub const KEY_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The longest spring-forward gap searched for its end (Samoa skipped a whole day in 2011).
const MAX_GAP_MINUTES: i64 = 48 * 60;

/// A parsed cron expression bound to an IANA timezone.
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: cron::Schedule,
    tz: Tz,
}

/// Why a rule's trigger was refused; `field` names the trigger field to point at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// `"cron"` or `"timezone"`.
    pub field: &'static str,
    pub message: String,
}

impl ScheduleError {
    fn cron(message: impl Into<String>) -> Self {
        ScheduleError { field: "cron", message: message.into() }
    }
    fn timezone(message: impl Into<String>) -> Self {
        ScheduleError { field: "timezone", message: message.into() }
    }
}

/// One firing of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// The instant to fire.
    pub at: DateTime<Utc>,
    /// The firing key: local wall-clock time in the rule's timezone, `YYYY-MM-DDTHH:MM:SS`.
    pub key: String,
    /// `at` in the rule's timezone offset (RFC 3339 with offset for showing users).
    pub local: DateTime<FixedOffset>,
}

impl Occurrence {
    /// `local` as RFC 3339 with the zone's offset, e.g. `2026-12-07T09:00:00+08:00`.
    pub fn rfc3339(&self) -> String {
        self.local.to_rfc3339()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule").field("cron", &self.expression).field("timezone", &self.tz.name()).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.tz == other.tz
    }
}

impl Eq for Schedule {}

impl Schedule {
    /// Parse a trigger's `cron` and `timezone`. Errors name the field at fault.
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let expression = cron.split_whitespace().collect::<Vec<_>>().join(" ");
        if expression.is_empty() {
            return Err(ScheduleError::cron(
                "empty cron expression; expected 6 fields 'sec min hour day-of-month month \
                 day-of-week', e.g. '0 0 9 * * Mon'",
            ));
        }
        if !expression.starts_with('@') {
            let fields: Vec<&str> = expression.split(' ').collect();
            match fields.len() {
                5 => {
                    return Err(ScheduleError::cron(format!(
                        "'{expression}' has 5 fields and needs a seconds field: try '0 {expression}'"
                    )));
                }
                6 | 7 => {}
                n => {
                    return Err(ScheduleError::cron(format!(
                        "'{expression}' has {n} fields; expected 6 'sec min hour day-of-month \
                         month day-of-week' or 7 with a year, e.g. '0 0 9 * * Mon'"
                    )));
                }
            }
            check_day_of_week(fields[5])?;
        }
        let parsed = cron::Schedule::from_str(&expression).map_err(|e| {
            // The crate's message repeats the expression with a caret line; keep its last line.
            let text = e.to_string();
            let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid");
            ScheduleError::cron(format!("invalid cron expression '{expression}': {}", reason.trim()))
        })?;

        let zone = timezone.trim();
        let tz = Tz::from_str(zone).map_err(|_| {
            ScheduleError::timezone(format!(
                "unknown timezone '{zone}': expected an IANA name such as 'Asia/Shanghai', \
                 'America/New_York' or 'UTC'"
            ))
        })?;
        Ok(Schedule { expression, cron: parsed, tz })
    }

    /// The expression as parsed (whitespace normalised).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The rule's timezone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<Occurrence> {
        self.iter_after(after).next()
    }

    /// All occurrences in `(after, until]`, in order, at most `limit`, with distinct keys.
    pub fn between(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<Occurrence> {
        if until <= after {
            return Vec::new();
        }
        self.iter_after(after).take(limit).take_while(|o| o.at <= until).collect()
    }

    /// The next `n` occurrences after `from`, for showing users (see [`Occurrence::rfc3339`]).
    pub fn upcoming(&self, from: DateTime<Utc>, n: usize) -> Vec<Occurrence> {
        self.iter_after(from).take(n).collect()
    }

    /// The occurrences strictly after `after`, in order, keys distinct and increasing. Ends when
    /// the schedule cannot fire again (at the latest after year 2100).
    pub fn iter_after(&self, after: DateTime<Utc>) -> Occurrences<'_> {
        // Enumerate wall-clock times in UTC (no transitions) starting from the wall-clock time
        // of `after`: every scheduled wall-clock time at or before it maps to an instant at or
        // before `after` (the mapping below is monotone), so nothing is missed.
        let local_start = after.with_timezone(&self.tz).naive_local();
        let wall = Utc.from_utc_datetime(&local_start);
        Occurrences { schedule: self, wall_clock: self.cron.after_owned(wall), last: after }
    }

    /// The instant at which the wall-clock time `wall` fires: itself when it exists once, its
    /// first instant when it exists twice, the end of the gap when it does not exist.
    fn resolve(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _second) => Some(first.with_timezone(&Utc)),
            LocalResult::None => self.gap_end(wall),
        }
    }

    /// The first instant after the gap containing the non-existent wall-clock time `wall`.
    fn gap_end(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let exists = |t: NaiveDateTime| self.tz.from_local_datetime(&t).earliest();
        let mut minute = wall;
        for _ in 0..MAX_GAP_MINUTES {
            let next = minute + Duration::minutes(1);
            if exists(next).is_some() {
                // The gap ends in (minute, next]: find its first second.
                for s in 1..=60 {
                    if let Some(t) = exists(minute + Duration::seconds(s)) {
                        return Some(t.with_timezone(&Utc));
                    }
                }
            }
            minute = next;
        }
        None
    }

    fn occurrence(&self, at: DateTime<Utc>) -> Occurrence {
        let zoned = at.with_timezone(&self.tz);
        Occurrence { at, key: zoned.naive_local().format(KEY_FORMAT).to_string(), local: zoned.fixed_offset() }
    }
}

/// Refuse numeric days of week (ambiguous between this crate and Unix cron); steps are fine.
fn check_day_of_week(field: &str) -> Result<(), ScheduleError> {
    let numeric = field.split(',').any(|item| item.split('/').next().unwrap_or("").chars().any(|c| c.is_ascii_digit()));
    if numeric {
        return Err(ScheduleError::cron(format!(
            "day-of-week '{field}' must use names (Sun, Mon, Tue, Wed, Thu, Fri, Sat; ranges like \
             Mon-Fri): numbers are ambiguous, here 1 = Sunday while in Unix cron 1 = Monday"
        )));
    }
    Ok(())
}

/// Iterator returned by [`Schedule::iter_after`].
pub struct Occurrences<'a> {
    schedule: &'a Schedule,
    wall_clock: cron::OwnedScheduleIterator<Utc>,
    last: DateTime<Utc>,
}

impl Iterator for Occurrences<'_> {
    type Item = Occurrence;

    fn next(&mut self) -> Option<Occurrence> {
        loop {
            let wall = self.wall_clock.next()?.naive_utc();
            let Some(at) = self.schedule.resolve(wall) else {
                continue;
            };
            // Skips the wall-clock times already passed (a start inside the repeated hour) and
            // the second and later times of one gap (same instant, same key).
            if at > self.last {
                self.last = at;
                return Some(self.schedule.occurrence(at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ny(cron: &str) -> Schedule {
        Schedule::parse(cron, "America/New_York").unwrap()
    }

    /// (UTC instant, key, local RFC 3339) triples.
    fn triples(occurrences: &[Occurrence]) -> Vec<(String, String, String)> {
        occurrences.iter().map(|o| (o.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(), o.key.clone(), o.rfc3339())).collect()
    }

    fn expect(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        list.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
    }

    /// Keys distinct and increasing with `at`; each `next_after(previous)` agrees with the list.
    fn assert_consistent(s: &Schedule, after: DateTime<Utc>, occurrences: &[Occurrence]) {
        let keys: HashSet<&str> = occurrences.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys.len(), occurrences.len(), "duplicate keys in {occurrences:?}");
        let mut previous = after;
        let mut previous_key = String::new();
        for o in occurrences {
            assert!(o.at > previous);
            assert!(o.key > previous_key);
            assert_eq!(s.next_after(previous).as_ref(), Some(o));
            assert_eq!(s.next_after(o.at - Duration::seconds(1)).as_ref(), Some(o));
            assert_eq!(o.local.naive_local().format(KEY_FORMAT).to_string(), o.key);
            previous = o.at;
            previous_key = o.key.clone();
        }
    }

    #[test]
    fn schedule_is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<Schedule>();
        check::<Occurrence>();
    }

    #[test]
    fn ny_daily_0230_spring_forward_fires_once_at_gap_end() {
        let s = ny("0 30 2 * * *");
        let after = utc("2026-03-06T12:00:00Z");
        let got = s.between(after, utc("2026-03-10T12:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-03-07T07:30:00Z", "2026-03-07T02:30:00", "2026-03-07T02:30:00-05:00"),
                ("2026-03-08T07:00:00Z", "2026-03-08T03:00:00", "2026-03-08T03:00:00-04:00"),
                ("2026-03-09T06:30:00Z", "2026-03-09T02:30:00", "2026-03-09T02:30:00-04:00"),
                ("2026-03-10T06:30:00Z", "2026-03-10T02:30:00", "2026-03-10T02:30:00-04:00"),
            ])
        );
        assert_consistent(&s, after, &got);
        // At the gap-end instant itself: strictly after, so the next day.
        assert_eq!(s.next_after(utc("2026-03-08T07:00:00Z")).unwrap().at, utc("2026-03-09T06:30:00Z"));
    }

    #[test]
    fn ny_daily_0230_fall_back_is_an_ordinary_day() {
        let s = ny("0 30 2 * * *");
        let after = utc("2026-10-30T12:00:00Z");
        let got = s.between(after, utc("2026-11-02T12:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-10-31T06:30:00Z", "2026-10-31T02:30:00", "2026-10-31T02:30:00-04:00"),
                ("2026-11-01T07:30:00Z", "2026-11-01T02:30:00", "2026-11-01T02:30:00-05:00"),
                ("2026-11-02T07:30:00Z", "2026-11-02T02:30:00", "2026-11-02T02:30:00-05:00"),
            ])
        );
        assert_consistent(&s, after, &got);
    }

    #[test]
    fn ny_daily_0130_fall_back_fires_the_first_only() {
        let s = ny("0 30 1 * * *");
        let after = utc("2026-10-30T12:00:00Z");
        let got = s.between(after, utc("2026-11-02T12:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-10-31T05:30:00Z", "2026-10-31T01:30:00", "2026-10-31T01:30:00-04:00"),
                ("2026-11-01T05:30:00Z", "2026-11-01T01:30:00", "2026-11-01T01:30:00-04:00"),
                ("2026-11-02T06:30:00Z", "2026-11-02T01:30:00", "2026-11-02T01:30:00-05:00"),
            ])
        );
        assert_consistent(&s, after, &got);
        // From inside the repeated hour, before and at the second 01:30 EST: not fired again.
        for t in ["2026-11-01T06:10:00Z", "2026-11-01T06:29:59Z", "2026-11-01T06:30:00Z"] {
            assert_eq!(s.next_after(utc(t)).unwrap().at, utc("2026-11-02T06:30:00Z"), "after {t}");
        }
    }

    #[test]
    fn ny_daily_0130_spring_forward_is_an_ordinary_day() {
        let s = ny("0 30 1 * * *");
        let after = utc("2026-03-06T12:00:00Z");
        let got = s.between(after, utc("2026-03-09T12:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-03-07T06:30:00Z", "2026-03-07T01:30:00", "2026-03-07T01:30:00-05:00"),
                ("2026-03-08T06:30:00Z", "2026-03-08T01:30:00", "2026-03-08T01:30:00-05:00"),
                ("2026-03-09T05:30:00Z", "2026-03-09T01:30:00", "2026-03-09T01:30:00-04:00"),
            ])
        );
        assert_consistent(&s, after, &got);
    }

    #[test]
    fn ny_hourly_fall_back_each_key_once() {
        let s = ny("0 0 * * * *");
        let after = utc("2026-11-01T03:00:00Z"); // 23:00 EDT on Oct 31
        let got = s.between(after, utc("2026-11-01T09:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-11-01T04:00:00Z", "2026-11-01T00:00:00", "2026-11-01T00:00:00-04:00"),
                ("2026-11-01T05:00:00Z", "2026-11-01T01:00:00", "2026-11-01T01:00:00-04:00"),
                ("2026-11-01T07:00:00Z", "2026-11-01T02:00:00", "2026-11-01T02:00:00-05:00"),
                ("2026-11-01T08:00:00Z", "2026-11-01T03:00:00", "2026-11-01T03:00:00-05:00"),
                ("2026-11-01T09:00:00Z", "2026-11-01T04:00:00", "2026-11-01T04:00:00-05:00"),
            ])
        );
        assert_consistent(&s, after, &got);
        // Started at the second 01:00 (EST): that key already fired at 05:00Z.
        assert_eq!(s.next_after(utc("2026-11-01T06:00:00Z")).unwrap().at, utc("2026-11-01T07:00:00Z"));
    }

    #[test]
    fn ny_hourly_spring_forward_each_key_once() {
        let s = ny("0 0 * * * *");
        let after = utc("2026-03-08T04:00:00Z"); // 23:00 EST on Mar 7
        let got = s.between(after, utc("2026-03-08T09:00:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-03-08T05:00:00Z", "2026-03-08T00:00:00", "2026-03-08T00:00:00-05:00"),
                ("2026-03-08T06:00:00Z", "2026-03-08T01:00:00", "2026-03-08T01:00:00-05:00"),
                ("2026-03-08T07:00:00Z", "2026-03-08T03:00:00", "2026-03-08T03:00:00-04:00"),
                ("2026-03-08T08:00:00Z", "2026-03-08T04:00:00", "2026-03-08T04:00:00-04:00"),
                ("2026-03-08T09:00:00Z", "2026-03-08T05:00:00", "2026-03-08T05:00:00-04:00"),
            ])
        );
        assert_consistent(&s, after, &got);
    }

    #[test]
    fn ny_every_15_minutes_fall_back() {
        let s = ny("0 */15 * * * *");
        let after = utc("2026-11-01T04:50:00Z"); // 00:50 EDT
        let got = s.between(after, utc("2026-11-01T07:20:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-11-01T05:00:00Z", "2026-11-01T01:00:00", "2026-11-01T01:00:00-04:00"),
                ("2026-11-01T05:15:00Z", "2026-11-01T01:15:00", "2026-11-01T01:15:00-04:00"),
                ("2026-11-01T05:30:00Z", "2026-11-01T01:30:00", "2026-11-01T01:30:00-04:00"),
                ("2026-11-01T05:45:00Z", "2026-11-01T01:45:00", "2026-11-01T01:45:00-04:00"),
                ("2026-11-01T07:00:00Z", "2026-11-01T02:00:00", "2026-11-01T02:00:00-05:00"),
                ("2026-11-01T07:15:00Z", "2026-11-01T02:15:00", "2026-11-01T02:15:00-05:00"),
            ])
        );
        assert_consistent(&s, after, &got);
        // The crate alone, started at 01:10 EST, goes back to 01:15 EDT (05:15Z); we do not.
        assert_eq!(s.next_after(utc("2026-11-01T06:10:00Z")).unwrap().at, utc("2026-11-01T07:00:00Z"));
        assert!(s.between(utc("2026-11-01T05:45:00Z"), utc("2026-11-01T06:59:59Z"), 100).is_empty());
    }

    #[test]
    fn ny_every_15_minutes_spring_forward() {
        let s = ny("0 */15 * * * *");
        let after = utc("2026-03-08T06:20:00Z"); // 01:20 EST
        let got = s.between(after, utc("2026-03-08T07:20:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-03-08T06:30:00Z", "2026-03-08T01:30:00", "2026-03-08T01:30:00-05:00"),
                ("2026-03-08T06:45:00Z", "2026-03-08T01:45:00", "2026-03-08T01:45:00-05:00"),
                ("2026-03-08T07:00:00Z", "2026-03-08T03:00:00", "2026-03-08T03:00:00-04:00"),
                ("2026-03-08T07:15:00Z", "2026-03-08T03:15:00", "2026-03-08T03:15:00-04:00"),
            ])
        );
        assert_consistent(&s, after, &got);
    }

    #[test]
    fn gap_firing_for_a_time_not_on_the_hour() {
        // 02:10 does not exist on 2026-03-08: fires at 03:00 EDT, then 03:10 as usual.
        let s = ny("0 10 * * * *");
        let got = s.between(utc("2026-03-08T06:00:00Z"), utc("2026-03-08T07:30:00Z"), 100);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-03-08T06:10:00Z", "2026-03-08T01:10:00", "2026-03-08T01:10:00-05:00"),
                ("2026-03-08T07:00:00Z", "2026-03-08T03:00:00", "2026-03-08T03:00:00-04:00"),
                ("2026-03-08T07:10:00Z", "2026-03-08T03:10:00", "2026-03-08T03:10:00-04:00"),
            ])
        );
    }

    #[test]
    fn shanghai_weekly_monday_0900() {
        let s = Schedule::parse("0 0 9 * * Mon", "Asia/Shanghai").unwrap();
        let from = utc("2026-12-02T00:00:00Z"); // a Wednesday
        let got = s.upcoming(from, 3);
        assert_eq!(
            triples(&got),
            expect(&[
                ("2026-12-07T01:00:00Z", "2026-12-07T09:00:00", "2026-12-07T09:00:00+08:00"),
                ("2026-12-14T01:00:00Z", "2026-12-14T09:00:00", "2026-12-14T09:00:00+08:00"),
                ("2026-12-21T01:00:00Z", "2026-12-21T09:00:00", "2026-12-21T09:00:00+08:00"),
            ])
        );
        assert_consistent(&s, from, &got);
        // Exactly at an occurrence: strictly after. Sub-second after it: still the next week.
        assert_eq!(s.next_after(utc("2026-12-07T01:00:00Z")).unwrap().key, "2026-12-14T09:00:00");
        assert_eq!(s.next_after(utc("2026-12-07T01:00:00.500Z")).unwrap().key, "2026-12-14T09:00:00");
        assert_eq!(s.next_after(utc("2026-12-07T00:59:59.999Z")).unwrap().key, "2026-12-07T09:00:00");
        assert_eq!(s.timezone(), chrono_tz::Asia::Shanghai);
        assert_eq!(s.expression(), "0 0 9 * * Mon");
    }

    #[test]
    fn seven_fields_with_year_and_shorthand() {
        let s = Schedule::parse("0 0 9 * * Mon-Fri 2027", "UTC").unwrap();
        assert_eq!(s.next_after(utc("2026-06-01T00:00:00Z")).unwrap().key, "2027-01-01T09:00:00");
        assert_eq!(s.next_after(utc("2027-12-31T09:00:00Z")), None);
        let d = Schedule::parse("  @daily ", "Europe/London").unwrap();
        assert_eq!(d.next_after(utc("2026-07-01T12:00:00Z")).unwrap().rfc3339(), "2026-07-02T00:00:00+01:00");
    }

    #[test]
    fn parse_errors_name_the_field() {
        let e = Schedule::parse("30 9 * * Mon-Fri", "Asia/Shanghai").unwrap_err();
        assert_eq!(e.field, "cron");
        assert!(e.message.contains("needs a seconds field: try '0 30 9 * * Mon-Fri'"), "{e}");

        for bad in ["0 61 9 * * Mon", "0 0 9 * * Funday", "0 0 25 * * *", "0 0 9 * 13 *", "x y z a b c"] {
            let e = Schedule::parse(bad, "Asia/Shanghai").unwrap_err();
            assert_eq!(e.field, "cron", "{bad}");
            assert!(e.message.contains(bad), "{e}");
            assert!(!e.message.contains('\n'), "{e:?}");
        }
        for bad in ["", "   ", "0 0 9", "0 0 9 * * Mon 2027 extra"] {
            assert_eq!(Schedule::parse(bad, "UTC").unwrap_err().field, "cron", "{bad:?}");
        }
        // Numeric day-of-week is refused (1 = Sunday in this crate, Monday in Unix cron).
        for bad in ["0 0 9 * * 1", "0 0 9 * * 1-5", "0 0 9 * * Mon,3"] {
            let e = Schedule::parse(bad, "UTC").unwrap_err();
            assert_eq!(e.field, "cron");
            assert!(e.message.contains("names"), "{e}");
        }
        assert!(Schedule::parse("0 0 9 * * */2", "UTC").is_ok());
        assert!(Schedule::parse("0 0 9 ? * Mon-Fri", "UTC").is_ok());

        for bad in ["Mars/Olympus", "", "asia/shanghai", "+08:00"] {
            let e = Schedule::parse("0 0 9 * * Mon", bad).unwrap_err();
            assert_eq!(e.field, "timezone", "{bad:?}");
            assert!(e.message.contains("IANA"), "{e}");
        }
        assert_eq!(serde_json::to_value(Schedule::parse("0 0 9 * * Mon", "Nowhere").unwrap_err()).unwrap()["field"], "timezone");
    }

    #[test]
    fn impossible_schedule_returns_none_quickly() {
        let started = std::time::Instant::now();
        for expr in ["0 0 0 30 2 *", "0 0 0 31 4,6,9,11 *", "0 0 0 1 1 * 2020"] {
            let s = Schedule::parse(expr, "America/New_York").unwrap();
            let from = utc("2026-01-01T00:00:00Z");
            assert_eq!(s.next_after(from), None, "{expr}");
            assert!(s.between(from, utc("2030-01-01T00:00:00Z"), 10).is_empty());
            assert!(s.upcoming(from, 5).is_empty());
        }
        // Leap day: exists, just rarely.
        let s = Schedule::parse("0 0 0 29 2 *", "UTC").unwrap();
        assert_eq!(s.next_after(utc("2026-01-01T00:00:00Z")).unwrap().key, "2028-02-29T00:00:00");
        // Beyond the crate's last year.
        assert_eq!(s.next_after(utc("2101-01-01T00:00:00Z")), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn between_respects_limit_and_bounds() {
        let s = Schedule::parse("0 */15 * * * *", "Asia/Shanghai").unwrap();
        let after = utc("2026-12-01T00:00:00Z");
        let until = utc("2026-12-02T00:00:00Z");
        let got = s.between(after, until, 5);
        assert_eq!(
            got.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["2026-12-01T08:15:00", "2026-12-01T08:30:00", "2026-12-01T08:45:00", "2026-12-01T09:00:00", "2026-12-01T09:15:00"]
        );
        assert!(s.between(after, until, 0).is_empty());
        assert!(s.between(until, after, 10).is_empty());
        // (after, until]: `after` excluded, `until` included.
        let all = s.between(after, until, 1000);
        assert_eq!(all.len(), 96);
        assert_eq!(all.last().unwrap().at, until);
        assert_consistent(&s, after, &all);
    }

    #[test]
    fn three_day_outage_catch_up_fires_every_key_once() {
        // The scheduler was down from Oct 31 to Nov 3 (across the fall-back) and catches up.
        let s = ny("0 0 * * * *");
        let after = utc("2026-10-31T00:00:00Z");
        let until = utc("2026-11-03T00:00:00Z");
        let all = s.between(after, until, 10_000);
        // 72 UTC hours, minus the repeated 01:00 (06:00Z on Nov 1).
        assert_eq!(all.len(), 71);
        assert!(!all.iter().any(|o| o.at == utc("2026-11-01T06:00:00Z")));
        assert_eq!(all.first().unwrap().key, "2026-10-30T21:00:00");
        assert_eq!(all.last().unwrap().key, "2026-11-02T19:00:00");
        assert_consistent(&s, after, &all);

        // Catching up in batches of 10, resuming from the last fired instant, gives the same list.
        let mut batched = Vec::new();
        let mut cursor = after;
        loop {
            let batch = s.between(cursor, until, 10);
            let Some(last) = batch.last() else { break };
            cursor = last.at;
            batched.extend(batch);
        }
        assert_eq!(batched, all);

        // The same over the spring-forward for a daily 02:30: every day once, Mar 8 at 03:00.
        let daily = ny("0 30 2 * * *");
        let days = daily.between(utc("2026-03-06T12:00:00Z"), utc("2026-03-09T12:00:00Z"), 100);
        assert_eq!(
            days.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["2026-03-07T02:30:00", "2026-03-08T03:00:00", "2026-03-09T02:30:00"]
        );
    }

    #[test]
    fn occurrence_serialises_for_users() {
        let s = Schedule::parse("0 0 9 * * Mon", "Asia/Shanghai").unwrap();
        let o = s.next_after(utc("2026-12-02T00:00:00Z")).unwrap();
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["key"], "2026-12-07T09:00:00");
        assert_eq!(v["local"], "2026-12-07T09:00:00+08:00");
        assert_eq!(v["at"], "2026-12-07T01:00:00Z");
    }

    /// What the `cron` crate yields on its own with a chrono-tz zone (documented above).
    #[test]
    fn cron_crate_alone_skips_gaps_and_repeats_overlaps() {
        let tz = chrono_tz::America::New_York;
        let raw = |expr: &str, from: &str| -> Vec<String> {
            let c = cron::Schedule::from_str(expr).unwrap();
            c.after(&utc(from).with_timezone(&tz)).take(3).map(|t| t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect()
        };
        // Daily 02:30: Mar 8 skipped.
        assert_eq!(raw("0 30 2 * * *", "2026-03-07T12:00:00Z"), ["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z", "2026-03-11T06:30:00Z"]);
        // Daily 01:30: Nov 1 twice.
        assert_eq!(raw("0 30 1 * * *", "2026-10-31T12:00:00Z"), ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"]);
        // Started at 01:10 EST (06:10Z): goes back in time to 01:15 EDT (05:15Z).
        assert_eq!(raw("0 */15 * * * *", "2026-11-01T06:10:00Z"), ["2026-11-01T05:15:00Z", "2026-11-01T06:15:00Z", "2026-11-01T05:30:00Z"]);
    }
}
