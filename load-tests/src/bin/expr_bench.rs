//! Account-filter expression benchmark: `fieldops_core::rules::expr::Expr::matches` over 100,000
//! generated accounts (JSON attribute maps, as the dispatcher holds them), against a plain Rust
//! closure doing the same on the same maps, and against the `cel` interpreter alone.
//!
//! `cargo run --release -p load-tests --bin expr_bench`

use std::hint::black_box;
use std::time::{Duration, Instant};

use fieldops_core::rules::expr::{Expr, Schema, Ty};
use serde_json::{Map, Value, json};

const ACCOUNTS: usize = 100_000;
const RUNS: usize = 5;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const CATEGORIES: [&str; 6] = ["restaurant", "cafe", "grocery", "pharmacy", "bakery", "hotel"];
const TAGS: [&str; 6] = ["chain", "halal", "late_night", "delivery", "competitor_a", "closed"];
const NAMES: [&str; 5] = ["Lao Wang Noodles", "Golden Dragon", "Sunrise Cafe", "Jade Garden", "Noodle House"];

fn accounts() -> Vec<Map<String, Value>> {
    let mut rng = Rng(0x5EED_F1E1_D0B5);
    (0..ACCOUNTS)
        .map(|i| {
            let mut m = Map::new();
            m.insert("id".into(), json!(format!("acc-{i}")));
            m.insert("name".into(), json!(NAMES[rng.below(5) as usize]));
            m.insert("city_id".into(), json!(if rng.chance(50) { "shanghai" } else { "hangzhou" }));
            m.insert("territory_id".into(), json!(format!("t-{}", rng.below(40))));
            m.insert("owner_id".into(), json!(format!("u-{}", rng.below(500))));
            if rng.chance(95) {
                m.insert("category".into(), json!(CATEGORIES[rng.below(6) as usize]));
            }
            if rng.chance(90) {
                // Half integral (JSON int), half fractional (JSON double).
                let g = rng.below(20_000);
                let v = if rng.chance(50) { json!(g) } else { json!(g as f64 + 0.5) };
                m.insert("gmv_30d".into(), v);
            }
            if rng.chance(90) {
                m.insert("days_since_visit".into(), json!(rng.below(60)));
            }
            if rng.chance(80) {
                m.insert("rating".into(), json!(rng.below(51) as f64 / 10.0));
            }
            let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.chance(25)).collect();
            m.insert("tags".into(), json!(tags));
            m
        })
        .collect()
}

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}
fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}
fn has_tag(m: &Map<String, Value>, t: &str) -> bool {
    m.get("tags").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x.as_str() == Some(t)))
}
fn tag_count(m: &Map<String, Value>) -> Option<usize> {
    m.get("tags").and_then(Value::as_array).map(Vec::len)
}

type Closure = fn(&Map<String, Value>) -> bool;

fn filters() -> Vec<(&'static str, &'static str, Closure)> {
    vec![
        ("simple", "category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14", |m| {
            text(m, "category") == Some("restaurant")
                && num(m, "gmv_30d").is_some_and(|v| v > 5000.0)
                && num(m, "days_since_visit").is_some_and(|v| v > 14.0)
        }),
        (
            "medium",
            "category in ['restaurant', 'cafe', 'bakery'] && (gmv_30d > 5000 || rating >= 4.5) \
             && days_since_visit > 14 && !('closed' in tags)",
            |m| {
                text(m, "category").is_some_and(|c| ["restaurant", "cafe", "bakery"].contains(&c))
                    && (num(m, "gmv_30d").is_some_and(|v| v > 5000.0) || num(m, "rating").is_some_and(|v| v >= 4.5))
                    && num(m, "days_since_visit").is_some_and(|v| v > 14.0)
                    && !has_tag(m, "closed")
            },
        ),
        (
            "complex",
            "(category == 'restaurant' || category == 'cafe') && gmv_30d * 12.0 > 60000 \
             && days_since_visit > 14 && rating >= 3.5 && size(tags) < 4 \
             && (name.contains('Noodle') || 'competitor_a' in tags) && city_id != 'hangzhou' \
             && !name.startsWith('Golden')",
            |m| {
                matches!(text(m, "category"), Some("restaurant" | "cafe"))
                    && num(m, "gmv_30d").is_some_and(|v| v * 12.0 > 60000.0)
                    && num(m, "days_since_visit").is_some_and(|v| v > 14.0)
                    && num(m, "rating").is_some_and(|v| v >= 3.5)
                    && tag_count(m).is_some_and(|n| n < 4)
                    && (text(m, "name").is_some_and(|n| n.contains("Noodle")) || has_tag(m, "competitor_a"))
                    && text(m, "city_id").is_some_and(|c| c != "hangzhou")
                    && !text(m, "name").is_some_and(|n| n.starts_with("Golden"))
            },
        ),
        ("macro (cel fallback)", "category == 'restaurant' && gmv_30d > 5000 && tags.exists(t, t.startsWith('late'))", |m| {
            text(m, "category") == Some("restaurant")
                && num(m, "gmv_30d").is_some_and(|v| v > 5000.0)
                && m.get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|t| t.as_str().is_some_and(|t| t.starts_with("late"))))
        }),
    ]
}

/// Best of `RUNS`: (matched, time).
fn best(accounts: &[Map<String, Value>], f: impl Fn(&Map<String, Value>) -> bool) -> (usize, Duration) {
    let mut best = Duration::MAX;
    let mut matched = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        matched = accounts.iter().filter(|a| f(black_box(a))).count();
        best = best.min(t.elapsed());
    }
    (matched, best)
}

fn line(what: &str, matched: usize, d: Duration) {
    let secs = d.as_secs_f64();
    println!(
        "  {what:<22} {matched:>6} matched  {:>9.2} ms/100k  {:>12.0} accounts/s",
        secs * 1e3 * 100_000.0 / ACCOUNTS as f64,
        ACCOUNTS as f64 / secs
    );
}

fn main() {
    let schema = Schema::new()
        .with("id", Ty::String)
        .with("name", Ty::String)
        .with("city_id", Ty::String)
        .with("territory_id", Ty::String)
        .with("owner_id", Ty::String)
        .with("category", Ty::String)
        .with("gmv_30d", Ty::Number)
        .with("days_since_visit", Ty::Number)
        .with("rating", Ty::Number)
        .with("tags", Ty::StringList);
    let t = Instant::now();
    let accounts = accounts();
    println!("{ACCOUNTS} accounts generated in {:.0} ms; best of {RUNS} runs each", t.elapsed().as_secs_f64() * 1e3);
    for (label, src, closure) in filters() {
        let t = Instant::now();
        let expr = Expr::compile(src, &schema).expect("filter compiles");
        let compile = t.elapsed();
        println!(
            "{label}: {src}\n  compile {:.0} µs, native evaluator: {}",
            compile.as_secs_f64() * 1e6,
            if expr.is_native() { "whole expression" } else { "part (rest by cel)" }
        );
        let (n_rust, d_rust) = best(&accounts, closure);
        let (n_expr, d_expr) = best(&accounts, |a| expr.matches(a));
        let (n_cel, d_cel) = best(&accounts, |a| expr.matches_with_cel(a));
        assert_eq!(n_expr, n_rust, "Expr::matches and the closure disagree on {label}");
        assert_eq!(n_cel, n_rust, "cel and the closure disagree on {label}");
        line("rust closure", n_rust, d_rust);
        line("Expr::matches", n_expr, d_expr);
        line("cel interpreter only", n_cel, d_cel);
        println!(
            "  Expr::matches / closure = {:.1}x; cel only / Expr::matches = {:.1}x",
            d_expr.as_secs_f64() / d_rust.as_secs_f64(),
            d_cel.as_secs_f64() / d_expr.as_secs_f64()
        );
    }
}
