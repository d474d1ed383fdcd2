//! Strategy rules: expressions, schedules.

pub mod expr;
