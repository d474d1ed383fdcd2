/// A duration written as `"90m"`, `"48h"`, `"7d"` (also `s` and `w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub chrono::Duration);

impl Duration {
    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("'{s}' needs a unit (s, m, h, d, w)"))?;
        let (num, unit) = s.split_at(split);
        let n: i64 = num.parse().map_err(|_| format!("'{s}' must start with a whole number"))?;
        if n <= 0 || n > 1_000_000 {
            return Err(format!("'{s}' must be positive and reasonable"));
        }
        let d = match unit {
            "s" => chrono::Duration::seconds(n),
            "m" => chrono::Duration::minutes(n),
            "h" => chrono::Duration::hours(n),
            "d" => chrono::Duration::days(n),
            "w" => chrono::Duration::weeks(n),
            _ => return Err(format!("'{s}': unit must be one of s, m, h, d, w")),
        };
        if d > chrono::Duration::days(3650) {
            return Err(format!("'{s}' is longer than ten years"));
        }
        Ok(Duration(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_units_and_refuses_nonsense() {
        assert_eq!(Duration::parse("90m").unwrap().0, chrono::Duration::minutes(90));
        assert_eq!(Duration::parse("48h").unwrap().0, chrono::Duration::hours(48));
        assert_eq!(Duration::parse("7d").unwrap().0, chrono::Duration::days(7));
        for bad in ["", "h", "10", "-5h", "5y", "0m", "1.5h"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
