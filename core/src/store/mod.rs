//! SQL per aggregate. Rows are mapped to wire types here; every read of city data takes a
//! [`crate::auth::Scope`] and filters in SQL (out of scope reads as not found).

pub mod audit;
pub mod directives;
pub mod reports;
pub mod rules;
pub mod tasks;
pub mod users;

/// The SQL predicate "this row's city is visible": `($n::text is null or <col> = $n)`, where `$n`
/// binds `Scope::city_id` (None for HQ roles).
pub fn city_visible(col: &str, n: usize) -> String {
    format!("(${n}::text is null or {col} = ${n})")
}
