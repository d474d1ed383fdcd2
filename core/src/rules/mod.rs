//! Strategy rules: expressions, schedules.

pub mod expr;
pub mod schedule;
