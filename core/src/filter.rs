//! Account filter expressions for directives: comparisons joined by `&&`, e.g.
//! `category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14`.
//!
//! A deliberately small, safe language (no calls, no loops); the full rules engine (CEL) replaces
//! it with the strategy-rules work. Names are account attributes plus `city_id`, `territory_id`,
//! `owner_id`, `id`, `name`. A comparison on a missing attribute or across types is false.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub name: String,
    pub op: Op,
    pub value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub all: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// The fields of the thing a filter looks at.
pub trait Subject {
    fn get(&self, name: &str) -> Option<Literal>;
}

impl Filter {
    pub fn parse(src: &str) -> Result<Filter, ParseError> {
        let mut p = Parser { s: src.as_bytes(), src, i: 0 };
        let mut all = vec![p.comparison()?];
        loop {
            p.ws();
            if p.i == p.s.len() {
                break;
            }
            if p.s[p.i..].starts_with(b"&&") {
                p.i += 2;
                all.push(p.comparison()?);
            } else {
                return Err(p.err("expected '&&' or the end"));
            }
        }
        Ok(Filter { all })
    }

    pub fn matches(&self, subject: &impl Subject) -> bool {
        self.all.iter().all(|c| match subject.get(&c.name) {
            None => false,
            Some(v) => compare(&v, c.op, &c.value),
        })
    }
}

fn compare(left: &Literal, op: Op, right: &Literal) -> bool {
    let ord = match (left, right) {
        (Literal::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Literal::Str(a), Literal::Str(b)) => Some(a.cmp(b)),
        (Literal::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
    }
}

/// Turns a JSON attribute value into a literal (strings, numbers, booleans only).
pub fn literal_of(v: &Value) -> Option<Literal> {
    match v {
        Value::String(s) => Some(Literal::Str(s.clone())),
        Value::Number(n) => n.as_f64().map(Literal::Num),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        _ => None,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> ParseError {
        ParseError { position: self.i, message: message.to_string() }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn comparison(&mut self) -> Result<Comparison, ParseError> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if start == self.i || self.s[start].is_ascii_digit() {
            self.i = start;
            return Err(self.err("expected an attribute name"));
        }
        let name = self.src[start..self.i].to_string();
        self.ws();
        let op = [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
            .into_iter()
            .find(|(t, _)| self.s[self.i..].starts_with(t.as_bytes()))
            .ok_or_else(|| self.err("expected one of == != < <= > >="))?;
        self.i += op.0.len();
        self.ws();
        let value = self.literal()?;
        Ok(Comparison { name, op: op.1, value })
    }
    fn literal(&mut self) -> Result<Literal, ParseError> {
        let Some(&c) = self.s.get(self.i) else { return Err(self.err("expected a value")) };
        if c == b'\'' || c == b'"' {
            let start = self.i + 1;
            let end = self.src[start..].find(c as char).ok_or_else(|| self.err("unterminated string"))?;
            self.i = start + end + 1;
            return Ok(Literal::Str(self.src[start..start + end].to_string()));
        }
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'.' | b'-' | b'+')) {
            self.i += 1;
        }
        match &self.src[start..self.i] {
            "true" => Ok(Literal::Bool(true)),
            "false" => Ok(Literal::Bool(false)),
            t => t.parse::<f64>().ok().filter(|n| n.is_finite()).map(Literal::Num).ok_or_else(|| {
                self.i = start;
                self.err("expected a string in quotes, a number, true or false")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct M(HashMap<&'static str, Literal>);
    impl Subject for M {
        fn get(&self, name: &str) -> Option<Literal> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn parses_and_matches() {
        let f = Filter::parse("category == 'restaurant' && gmv_30d > 5000 && open != false").unwrap();
        let m = |cat: &str, gmv: f64| M(HashMap::from([("category", Literal::Str(cat.into())), ("gmv_30d", Literal::Num(gmv)), ("open", Literal::Bool(true))]));
        assert!(f.matches(&m("restaurant", 6000.0)));
        assert!(!f.matches(&m("restaurant", 5000.0)));
        assert!(!f.matches(&m("cafe", 9000.0)));
        assert!(!Filter::parse("missing == 1").unwrap().matches(&m("cafe", 1.0)));
    }

    #[test]
    fn errors_carry_the_position() {
        assert_eq!(Filter::parse("gmv_30d >> 5").unwrap_err().position, 9);
        assert_eq!(Filter::parse("a == 'x' || b == 1").unwrap_err().position, 9);
        assert_eq!(Filter::parse("a == 'x").unwrap_err().message, "unterminated string");
        assert_eq!(Filter::parse("").unwrap_err().position, 0);
    }
}
