//! Filter expressions for strategy rules: account filters (`target.accounts`) and report filters
//! (`trigger.filter`), written in CEL (Common Expression Language), e.g.
//! `category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14` or
//! `kind == 'intel' && 'competitor_subsidy' in tags`.
//!
//! # Compiling
//!
//! [`Expr::compile`] parses with the `cel` crate, then walks the parsed AST against a [`Schema`]
//! (the top-level names the expression may use, with their types):
//!
//! - every top-level identifier must be in the schema ([`ExprErrorKind::UnknownName`]); so must
//!   every function (CEL's standard ones: `size`, `contains`, `startsWith`, `endsWith`, `matches`,
//!   conversions, timestamp accessors, the `has`/`all`/`exists`/`exists_one`/`map`/`filter` macros);
//! - operators are type-checked where the types are known ([`ExprErrorKind::Type`]): comparing or
//!   doing arithmetic across types (`category > 5` with `category` a String, `gmv_30d == 'x'` with
//!   `gmv_30d` a Number), `in` on something that is not a list or map, string functions on
//!   non-strings, `&&`/`||`/`!`/`?:` conditions that are not boolean, fields of a non-map;
//! - the whole expression must be boolean where its type is known ([`ExprErrorKind::NotBoolean`]).
//!
//! What cannot be typed statically is allowed: members of a [`Ty::Map`] name
//! (`answers.signed == true`), list elements other than of a [`Ty::StringList`], results of
//! `dyn()`. Ints and doubles are one type, Number.
//!
//! # Positions
//!
//! [`ExprError::position`] is a byte offset into the source (0-based); `line` and `column` are
//! 1-based, the column counted in characters (Unicode scalar values), as an editor shows it.
//! - Syntax errors: the `cel` parser reports (line, column) with the column 1-based in characters;
//!   it is converted to the byte offset. The first error (in source order) is answered.
//! - Other errors: the `cel` parser records a byte range for every AST node
//!   (`Program::source_info().offset_for(id)`); we use it, no text search. An unknown name points
//!   at the identifier; an operator's type error at the start of the offending operand (the
//!   literal if exactly one operand is a literal, else the right-hand operand: `category > 5`
//!   points at `5`); a function's type error at the offending argument or receiver; NotBoolean at
//!   the start of the expression.
//!
//! # Evaluating
//!
//! [`Expr::matches`] runs over a JSON object of facts. A name missing from the facts (or `null`,
//! or of a JSON type other than its schema type) is *absent*: any comparison, `in`, or string
//! function involving it is false, never an error; a non-boolean result is false.
//!
//! Compiling lowers the checked AST to a small evaluator of our own that reads the JSON facts in
//! place (no per-evaluation `cel::Context`, no value conversion): literals, names, map members,
//! indexing, `== != < <= > >=`, `in`, `&& || ! ?:`, numeric arithmetic, `size`, `contains`,
//! `startsWith`, `endsWith`, `has`. Measured (load-tests `expr_bench`, 100,000 accounts as JSON
//! maps): 40 ms for `category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14`, 2.3x
//! a hand-written Rust closure over the same maps and 2-3x faster than the `cel` interpreter with
//! a variable resolver (92 ms). Any boolean sub-expression outside that
//! subset (macros such as `tags.exists(t, ..)`, timestamps and durations, `matches`, conversions,
//! string concatenation) is evaluated by the `cel` interpreter, with the facts converted on
//! demand; there an error (absent name, wrong type) makes that sub-expression false as a whole,
//! so `!` over such a sub-expression with an absent name is false too (in the native subset,
//! `!(x > 1)` with `x` absent is true).
//!
//! Numbers: JSON numbers are doubles in both evaluators (`gmv_30d > 5000` holds for 6000 and
//! 6000.5 alike); in sub-expressions handed to `cel`, integer literals are rewritten to doubles
//! (except list indexes), so `gmv_30d + 1` doesn't fail on CEL's int/double split.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{CallExpr, EntryExpr, Expr as Ast, IdedExpr, LiteralValue, SourceInfo, operators as op};
use cel::common::value::CowVal;
use serde_json::{Map, Value as Json};

/// Static type of a name the expression may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    String,
    Number,
    Bool,
    StringList,
    /// A string-keyed map of anything (e.g. report answers); its members are not typed.
    Map,
    /// An RFC 3339 string in the facts; compare with `timestamp('2026-01-01T00:00:00Z')`.
    Timestamp,
}

/// The names (top-level identifiers) an expression may use, with their types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    names: Vec<(String, Ty)>,
}

impl Schema {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or retypes) a name.
    pub fn with(mut self, name: &str, ty: Ty) -> Self {
        match self.names.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = ty,
            None => self.names.push((name.to_owned(), ty)),
        }
        self
    }

    pub fn names(&self) -> impl Iterator<Item = (&str, Ty)> {
        self.names.iter().map(|(n, t)| (n.as_str(), *t))
    }

    pub fn get(&self, name: &str) -> Option<Ty> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExprErrorKind {
    Syntax,
    UnknownName,
    Type,
    NotBoolean,
}

/// A compile error: byte `position` in the source (0-based), plus line/column (1-based, column in
/// characters), and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ExprError {
    pub position: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub kind: ExprErrorKind,
}

impl ExprError {
    fn at(src: &str, position: usize, kind: ExprErrorKind, message: String) -> Self {
        let position = floor_char_boundary(src, position.min(src.len()));
        let before = &src[..position];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = src[line_start..position].chars().count() + 1;
        ExprError { position, line, column, message, kind }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte offset of a 1-based (line, column-in-characters) position.
fn byte_offset(src: &str, line: isize, column: isize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match src[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return src.len(),
        }
    }
    let line_text = &src[start..];
    let line_len = line_text.find('\n').unwrap_or(line_text.len());
    let skip = (column.max(1) - 1) as usize;
    start + line_text[..line_len].char_indices().nth(skip).map_or(line_len, |(i, _)| i)
}

/// The `cel` standard environment, built once (building it registers a few hundred overloads).
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled, checked expression. Cheap to clone or share (Send + Sync) across threads.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    schema: Schema,
    root: B,
    native: bool,
    /// The whole checked AST (integer literals as doubles), for [`Expr::matches_with_cel`].
    whole: IdedExpr,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.inner.source).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.source == other.inner.source && self.inner.schema == other.inner.schema
    }
}

impl Expr {
    pub fn compile(src: &str, schema: &Schema) -> Result<Expr, ExprError> {
        let program = ENV.compile(src).map_err(|errs| {
            let first = errs.errors.iter().min_by_key(|e| e.pos);
            match first {
                Some(e) => {
                    let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg).to_owned();
                    ExprError::at(src, byte_offset(src, e.pos.0, e.pos.1), ExprErrorKind::Syntax, msg)
                }
                None => ExprError::at(src, 0, ExprErrorKind::Syntax, "syntax error".into()),
            }
        })?;
        let root = program.expression();
        let mut checker = Checker { schema, info: program.source_info(), src, locals: Vec::new(), types: HashMap::new() };
        let ty = checker.check(root)?;
        if !matches!(ty, St::Bool | St::Dyn) {
            let pos = checker.start(root);
            return Err(ExprError::at(src, pos, ExprErrorKind::NotBoolean, format!("the expression is {}, not a boolean", ty.name())));
        }
        let mut whole = root.clone();
        doubles_for_ints(&mut whole, false);
        let lower = Lower { schema, types: &checker.types };
        let root = lower.bool_node(root);
        let native = !root.uses_cel();
        Ok(Expr { inner: Arc::new(Inner { source: src.to_owned(), schema: schema.clone(), root, native, whole }) })
    }

    /// Evaluates against facts (values for the schema's names; a name missing from the facts is
    /// "absent": any comparison involving it is false, never an error). Non-boolean results are
    /// false.
    pub fn matches(&self, facts: &Map<String, Json>) -> bool {
        let ev = Eval { facts, schema: &self.inner.schema };
        ev.bool(&self.inner.root)
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Whether the whole expression runs on the native evaluator (no part handed to `cel`).
    pub fn is_native(&self) -> bool {
        self.inner.native
    }

    /// Evaluates with the `cel` interpreter only (no native evaluator): for comparison and
    /// benchmarks. Same absent-name rule as inside [`Expr::matches`]' `cel` sub-expressions.
    pub fn matches_with_cel(&self, facts: &Map<String, Json>) -> bool {
        eval_cel(&self.inner.whole, facts, &self.inner.schema)
    }
}

// ---------------------------------------------------------------------------------------------
// Static checking

/// Static types of sub-expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Str,
    Num,
    Bool,
    StrList,
    List,
    Map,
    Time,
    Duration,
    Null,
    Dyn,
}

impl St {
    fn of(ty: Ty) -> St {
        match ty {
            Ty::String => St::Str,
            Ty::Number => St::Num,
            Ty::Bool => St::Bool,
            Ty::StringList => St::StrList,
            Ty::Map => St::Map,
            Ty::Timestamp => St::Time,
        }
    }

    fn name(self) -> &'static str {
        match self {
            St::Str => "a string",
            St::Num => "a number",
            St::Bool => "a boolean",
            St::StrList => "a list of strings",
            St::List => "a list",
            St::Map => "a map",
            St::Time => "a timestamp",
            St::Duration => "a duration",
            St::Null => "null",
            St::Dyn => "a value of unknown type",
        }
    }

    fn is_list(self) -> bool {
        matches!(self, St::StrList | St::List)
    }
}

struct Checker<'a> {
    schema: &'a Schema,
    info: &'a SourceInfo,
    src: &'a str,
    locals: Vec<(String, St)>,
    types: HashMap<u64, St>,
}

const TIME_ACCESSORS: &[&str] = &[
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

impl Checker<'_> {
    fn pos(&self, id: u64) -> usize {
        self.info.offset_for(id).map_or(0, |(start, _)| start as usize)
    }

    /// Where a node is: for a global function call, its name (`cel` records the `(`).
    fn node_pos(&self, e: &IdedExpr) -> usize {
        let pos = self.pos(e.id);
        if let Ast::Call(c) = &e.expr {
            let name = c.func_name.as_str();
            if c.target.is_none()
                && name.starts_with(|ch: char| ch.is_alphabetic())
                && pos >= name.len()
                && self.src.get(pos - name.len()..pos) == Some(name)
            {
                return pos - name.len();
            }
        }
        pos
    }

    /// The first byte of a sub-expression: the smallest node offset in it.
    fn start(&self, e: &IdedExpr) -> usize {
        let mut min = self.node_pos(e);
        let mut visit = |c: &IdedExpr| min = min.min(self.start(c));
        match &e.expr {
            Ast::Call(c) => {
                if let Some(t) = &c.target {
                    visit(t);
                }
                c.args.iter().for_each(visit);
            }
            Ast::Select(s) => visit(&s.operand),
            Ast::List(l) => l.elements.iter().for_each(visit),
            Ast::Map(m) => m.entries.iter().for_each(|en| {
                if let EntryExpr::MapEntry(me) = &en.expr {
                    visit(&me.key);
                }
            }),
            Ast::Comprehension(c) => visit(&c.iter_range),
            _ => {}
        }
        min
    }

    fn err(&self, pos: usize, kind: ExprErrorKind, msg: String) -> ExprError {
        ExprError::at(self.src, pos, kind, msg)
    }

    fn check(&mut self, e: &IdedExpr) -> Result<St, ExprError> {
        let t = self.check_inner(e)?;
        self.types.insert(e.id, t);
        Ok(t)
    }

    fn check_inner(&mut self, e: &IdedExpr) -> Result<St, ExprError> {
        match &e.expr {
            Ast::Literal(l) => Ok(match l {
                LiteralValue::Boolean(_) => St::Bool,
                LiteralValue::Int(_) | LiteralValue::UInt(_) | LiteralValue::Double(_) => St::Num,
                LiteralValue::String(_) => St::Str,
                LiteralValue::Null => St::Null,
                LiteralValue::Bytes(_) => St::Dyn,
            }),
            Ast::Ident(name) => {
                if let Some((_, t)) = self.locals.iter().rev().find(|(n, _)| n == name) {
                    return Ok(*t);
                }
                match self.schema.get(name) {
                    Some(ty) => Ok(St::of(ty)),
                    None => Err(self.err(self.pos(e.id), ExprErrorKind::UnknownName, format!("unknown name '{name}'"))),
                }
            }
            Ast::Select(s) => {
                let t = self.check(&s.operand)?;
                if !matches!(t, St::Map | St::Dyn) {
                    return Err(self.err(
                        self.pos(e.id),
                        ExprErrorKind::Type,
                        format!("'.{}' on {}: only maps have fields", s.field, t.name()),
                    ));
                }
                Ok(if s.test { St::Bool } else { St::Dyn })
            }
            Ast::List(l) => {
                let mut all_str = true;
                for el in &l.elements {
                    all_str &= matches!(self.check(el)?, St::Str);
                }
                Ok(if all_str { St::StrList } else { St::List })
            }
            Ast::Map(m) => {
                for en in &m.entries {
                    match &en.expr {
                        EntryExpr::MapEntry(me) => {
                            self.check(&me.key)?;
                            self.check(&me.value)?;
                        }
                        EntryExpr::StructField(f) => {
                            self.check(&f.value)?;
                        }
                    }
                }
                Ok(St::Map)
            }
            Ast::Struct(s) => Err(self.err(self.pos(e.id), ExprErrorKind::UnknownName, format!("unknown message type '{}'", s.type_name))),
            Ast::Comprehension(c) => {
                let range = self.check(&c.iter_range)?;
                let (v1, v2) = match range {
                    St::StrList => (St::Str, St::Str),
                    St::List | St::Dyn => (St::Dyn, St::Dyn),
                    St::Map => (St::Str, St::Dyn),
                    other => {
                        return Err(self.err(
                            self.start(&c.iter_range),
                            ExprErrorKind::Type,
                            format!("cannot iterate over {}", other.name()),
                        ));
                    }
                };
                let accu = self.check(&c.accu_init)?;
                let depth = self.locals.len();
                match &c.iter_var2 {
                    // Two-variable form: index/key, then value.
                    Some(v) => {
                        let first = if range == St::Map { St::Str } else { St::Num };
                        self.locals.push((c.iter_var.clone(), first));
                        self.locals.push((v.clone(), if range == St::Map { v2 } else { v1 }));
                    }
                    None => self.locals.push((c.iter_var.clone(), v1)),
                }
                self.locals.push((c.accu_var.clone(), accu));
                let r = (|| {
                    self.check(&c.loop_cond)?;
                    self.check(&c.loop_step)?;
                    self.check(&c.result)
                })();
                self.locals.truncate(depth);
                r
            }
            Ast::Call(c) => self.check_call(e, c),
            Ast::Unspecified => Ok(St::Dyn),
        }
    }

    fn expect_bool(&mut self, e: &IdedExpr, what: &str) -> Result<(), ExprError> {
        let t = self.check(e)?;
        if matches!(t, St::Bool | St::Dyn) {
            Ok(())
        } else {
            Err(self.err(self.start(e), ExprErrorKind::Type, format!("{what} is {}, not a boolean", t.name())))
        }
    }

    /// A type error for a binary operator: at the literal operand if exactly one is a literal,
    /// else at the right-hand operand.
    fn binary_error(&self, l: &IdedExpr, r: &IdedExpr, msg: String) -> ExprError {
        let lit = |e: &IdedExpr| matches!(e.expr, Ast::Literal(_) | Ast::List(_) | Ast::Map(_));
        let at = if lit(l) && !lit(r) { l } else { r };
        self.err(self.start(at), ExprErrorKind::Type, msg)
    }

    fn check_call(&mut self, e: &IdedExpr, c: &CallExpr) -> Result<St, ExprError> {
        let name = c.func_name.as_str();
        let symbol = |n: &str| n.trim_matches('_').trim_start_matches('@').to_owned();
        match (name, c.target.as_deref(), c.args.as_slice()) {
            (op::LOGICAL_AND | op::LOGICAL_OR, None, args) => {
                for a in args {
                    self.expect_bool(a, &format!("the operand of '{}'", symbol(name)))?;
                }
                Ok(St::Bool)
            }
            (op::LOGICAL_NOT, None, [a]) => {
                self.expect_bool(a, "the operand of '!'")?;
                Ok(St::Bool)
            }
            (op::NOT_STRICTLY_FALSE, None, [a]) => {
                self.check(a)?;
                Ok(St::Bool)
            }
            (op::CONDITIONAL, None, [cond, a, b]) => {
                self.expect_bool(cond, "the condition of '?:'")?;
                let (ta, tb) = (self.check(a)?, self.check(b)?);
                Ok(if ta == tb { ta } else { St::Dyn })
            }
            (op::EQUALS | op::NOT_EQUALS, None, [l, r]) => {
                let (tl, tr) = (self.check(l)?, self.check(r)?);
                let ok = tl == tr || matches!(tl, St::Dyn | St::Null) || matches!(tr, St::Dyn | St::Null) || (tl.is_list() && tr.is_list());
                if !ok {
                    return Err(self.binary_error(l, r, format!("cannot compare {} with {}", tl.name(), tr.name())));
                }
                Ok(St::Bool)
            }
            (op::LESS | op::LESS_EQUALS | op::GREATER | op::GREATER_EQUALS, None, [l, r]) => {
                let (tl, tr) = (self.check(l)?, self.check(r)?);
                let orderable = |t: St| matches!(t, St::Num | St::Str | St::Bool | St::Time | St::Duration | St::Dyn);
                let ok = orderable(tl) && orderable(tr) && (tl == tr || tl == St::Dyn || tr == St::Dyn);
                if !ok {
                    return Err(self.binary_error(l, r, format!("cannot order {} against {}", tl.name(), tr.name())));
                }
                Ok(St::Bool)
            }
            (op::IN, None, [l, r]) => {
                let (tl, tr) = (self.check(l)?, self.check(r)?);
                let ok = match tr {
                    St::StrList | St::Map => matches!(tl, St::Str | St::Dyn),
                    St::List | St::Dyn => true,
                    _ => false,
                };
                if !ok {
                    let at = if matches!(tr, St::StrList | St::Map) { l } else { r };
                    return Err(self.err(
                        self.start(at),
                        ExprErrorKind::Type,
                        format!("'in' needs a list or map on the right and a matching element, got {} in {}", tl.name(), tr.name()),
                    ));
                }
                Ok(St::Bool)
            }
            (op::ADD | op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO, None, [l, r]) => {
                let (tl, tr) = (self.check(l)?, self.check(r)?);
                use St::*;
                let t = match (name, tl, tr) {
                    (_, Num, Num) => Some(Num),
                    (op::ADD, Str, Str) => Some(Str),
                    (op::ADD, StrList, StrList) => Some(StrList),
                    (op::ADD, a, b) if a.is_list() && b.is_list() => Some(List),
                    (op::ADD, Time, Duration) | (op::ADD, Duration, Time) => Some(Time),
                    (op::ADD | op::SUBSTRACT, Duration, Duration) => Some(Duration),
                    (op::SUBSTRACT, Time, Time) => Some(Duration),
                    (op::SUBSTRACT, Time, Duration) => Some(Time),
                    (_, Dyn, _) | (_, _, Dyn) => Some(Dyn),
                    _ => None,
                };
                t.ok_or_else(|| self.binary_error(l, r, format!("'{}' between {} and {}", symbol(name), tl.name(), tr.name())))
            }
            (op::NEGATE, None, [a]) => match self.check(a)? {
                t @ (St::Num | St::Duration | St::Dyn) => Ok(t),
                t => Err(self.err(self.start(a), ExprErrorKind::Type, format!("cannot negate {}", t.name()))),
            },
            (op::INDEX, None, [l, r]) => {
                let (tl, tr) = (self.check(l)?, self.check(r)?);
                match (tl, tr) {
                    (St::StrList, St::Num | St::Dyn) => Ok(St::Str),
                    (St::List, St::Num | St::Dyn) | (St::Map | St::Dyn, _) => Ok(St::Dyn),
                    (St::StrList | St::List, _) => {
                        Err(self.err(self.start(r), ExprErrorKind::Type, format!("a list index must be a number, got {}", tr.name())))
                    }
                    _ => Err(self.err(self.start(l), ExprErrorKind::Type, format!("cannot index {}", tl.name()))),
                }
            }
            ("size", target, args) => {
                let arg = match (target, args) {
                    (None, [a]) | (Some(a), []) => a,
                    _ => return Err(self.arity(e, name)),
                };
                match self.check(arg)? {
                    St::Str | St::StrList | St::List | St::Map | St::Dyn => Ok(St::Num),
                    t => Err(self.err(self.start(arg), ExprErrorKind::Type, format!("size() of {}", t.name()))),
                }
            }
            ("contains" | "startsWith" | "endsWith" | "matches", target, args) => {
                let (recv, arg) = match (target, args) {
                    (Some(t), [a]) => (t, a),
                    (None, [t, a]) if name == "matches" => (t, a),
                    _ => return Err(self.arity(e, name)),
                };
                for x in [recv, arg] {
                    let t = self.check(x)?;
                    if !matches!(t, St::Str | St::Dyn) {
                        return Err(self.err(self.start(x), ExprErrorKind::Type, format!("{name}() works on strings, got {}", t.name())));
                    }
                }
                Ok(St::Bool)
            }
            ("int" | "uint" | "double" | "string" | "bool" | "bytes" | "dyn" | "type" | "timestamp" | "duration", None, [a]) => {
                let ta = self.check(a)?;
                Ok(match name {
                    "int" | "uint" | "double" => St::Num,
                    "string" => St::Str,
                    "bool" => St::Bool,
                    "timestamp" if matches!(ta, St::Str | St::Time | St::Num | St::Dyn) => St::Time,
                    "duration" if matches!(ta, St::Str | St::Duration | St::Dyn) => St::Duration,
                    "timestamp" | "duration" => {
                        return Err(self.err(self.start(a), ExprErrorKind::Type, format!("{name}() of {}", ta.name())));
                    }
                    _ => St::Dyn,
                })
            }
            (n, Some(t), args) if TIME_ACCESSORS.contains(&n) && args.len() <= 1 => {
                let tt = self.check(t)?;
                for a in args {
                    self.check(a)?;
                }
                if matches!(tt, St::Time | St::Duration | St::Dyn) {
                    Ok(St::Num)
                } else {
                    Err(self.err(self.start(t), ExprErrorKind::Type, format!("{n}() of {}", tt.name())))
                }
            }
            _ => Err(self.err(
                self.node_pos(e),
                ExprErrorKind::UnknownName,
                format!("unknown function '{name}' (or wrong number of arguments)"),
            )),
        }
    }

    fn arity(&self, e: &IdedExpr, name: &str) -> ExprError {
        self.err(self.pos(e.id), ExprErrorKind::Type, format!("wrong arguments for {name}()"))
    }
}

// ---------------------------------------------------------------------------------------------
// Native evaluator

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy)]
enum StrFn {
    Contains,
    StartsWith,
    EndsWith,
}

/// A boolean node.
#[derive(Debug)]
enum B {
    Const(bool),
    And(Vec<B>),
    Or(Vec<B>),
    Not(Box<B>),
    Cond(Box<B>, Box<B>, Box<B>),
    Cmp(Cmp, V, V),
    In(V, V),
    Str(StrFn, V, V),
    Has(V, String),
    /// A boolean-typed value (a Bool name, a map member).
    Truthy(V),
    /// Handed to the `cel` interpreter (integer literals already rewritten to doubles).
    Cel(Box<IdedExpr>),
}

impl B {
    fn uses_cel(&self) -> bool {
        match self {
            B::Cel(_) => true,
            B::Const(_) => false,
            B::And(v) | B::Or(v) => v.iter().any(B::uses_cel),
            B::Not(b) => b.uses_cel(),
            B::Cond(a, b, c) => a.uses_cel() || b.uses_cel() || c.uses_cel(),
            B::Cmp(_, a, b) | B::In(a, b) | B::Str(_, a, b) => a.uses_cel() || b.uses_cel(),
            B::Has(a, _) | B::Truthy(a) => a.uses_cel(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A value node.
#[derive(Debug)]
enum V {
    Lit(Lit),
    List(Vec<Lit>),
    Name(String, Ty),
    Field(Box<V>, String),
    Index(Box<V>, Box<V>),
    Size(Box<V>),
    Arith(Arith, Box<V>, Box<V>),
    Neg(Box<V>),
    Cond(Box<B>, Box<V>, Box<V>),
    Bool(Box<B>),
}

impl V {
    fn uses_cel(&self) -> bool {
        match self {
            V::Lit(_) | V::List(_) | V::Name(..) => false,
            V::Field(v, _) | V::Size(v) | V::Neg(v) => v.uses_cel(),
            V::Index(a, b) | V::Arith(_, a, b) => a.uses_cel() || b.uses_cel(),
            V::Cond(c, a, b) => c.uses_cel() || a.uses_cel() || b.uses_cel(),
            V::Bool(b) => b.uses_cel(),
        }
    }
}

struct Lower<'a> {
    schema: &'a Schema,
    types: &'a HashMap<u64, St>,
}

impl Lower<'_> {
    fn ty(&self, e: &IdedExpr) -> St {
        self.types.get(&e.id).copied().unwrap_or(St::Dyn)
    }

    /// A boolean position: natively if possible, else handed to `cel`.
    fn bool_node(&self, e: &IdedExpr) -> B {
        self.try_bool(e).unwrap_or_else(|| {
            let mut e = e.clone();
            doubles_for_ints(&mut e, false);
            B::Cel(Box::new(e))
        })
    }

    fn try_bool(&self, e: &IdedExpr) -> Option<B> {
        match &e.expr {
            Ast::Literal(LiteralValue::Boolean(b)) => Some(B::Const(*b.inner())),
            Ast::Select(s) if s.test => Some(B::Has(self.value(&s.operand)?, s.field.clone())),
            Ast::Call(c) if c.target.is_none() => {
                let args = c.args.as_slice();
                let cmp = |op| Some(B::Cmp(op, self.value(&args[0])?, self.value(&args[1])?));
                match (c.func_name.as_str(), args.len()) {
                    (op::LOGICAL_AND, _) => Some(B::And(args.iter().map(|a| self.bool_node(a)).collect())),
                    (op::LOGICAL_OR, _) => Some(B::Or(args.iter().map(|a| self.bool_node(a)).collect())),
                    (op::LOGICAL_NOT, 1) => Some(B::Not(Box::new(self.bool_node(&args[0])))),
                    (op::CONDITIONAL, 3) => Some(B::Cond(
                        Box::new(self.bool_node(&args[0])),
                        Box::new(self.bool_node(&args[1])),
                        Box::new(self.bool_node(&args[2])),
                    )),
                    (op::EQUALS, 2) => cmp(Cmp::Eq),
                    (op::NOT_EQUALS, 2) => cmp(Cmp::Ne),
                    (op::LESS, 2) => cmp(Cmp::Lt),
                    (op::LESS_EQUALS, 2) => cmp(Cmp::Le),
                    (op::GREATER, 2) => cmp(Cmp::Gt),
                    (op::GREATER_EQUALS, 2) => cmp(Cmp::Ge),
                    (op::IN, 2) => Some(B::In(self.value(&args[0])?, self.value(&args[1])?)),
                    _ => None,
                }
            }
            Ast::Call(c) => {
                let f = match c.func_name.as_str() {
                    "contains" => StrFn::Contains,
                    "startsWith" => StrFn::StartsWith,
                    "endsWith" => StrFn::EndsWith,
                    _ => return None,
                };
                let [arg] = c.args.as_slice() else { return None };
                Some(B::Str(f, self.value(c.target.as_deref()?)?, self.value(arg)?))
            }
            Ast::Ident(_) | Ast::Select(_) => Some(B::Truthy(self.value(e)?)),
            _ => None,
        }
    }

    fn value(&self, e: &IdedExpr) -> Option<V> {
        match &e.expr {
            Ast::Literal(l) => Some(V::Lit(lit(l)?)),
            Ast::List(l) => {
                let mut out = Vec::with_capacity(l.elements.len());
                for el in &l.elements {
                    match &el.expr {
                        Ast::Literal(x) => out.push(lit(x)?),
                        _ => return None,
                    }
                }
                Some(V::List(out))
            }
            Ast::Ident(name) => match self.schema.get(name)? {
                Ty::Timestamp => None,
                ty => Some(V::Name(name.clone(), ty)),
            },
            Ast::Select(s) if !s.test => Some(V::Field(Box::new(self.value(&s.operand)?), s.field.clone())),
            Ast::Call(c) => {
                let args = c.args.as_slice();
                match (c.func_name.as_str(), c.target.as_deref(), args) {
                    ("size", None, [a]) | ("size", Some(a), []) => Some(V::Size(Box::new(self.value(a)?))),
                    (op::INDEX, None, [a, b]) => Some(V::Index(Box::new(self.value(a)?), Box::new(self.value(b)?))),
                    (op::NEGATE, None, [a]) if self.ty(a) == St::Num => Some(V::Neg(Box::new(self.value(a)?))),
                    (f @ (op::ADD | op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO), None, [a, b])
                        if self.ty(a) == St::Num && self.ty(b) == St::Num =>
                    {
                        let o = match f {
                            op::ADD => Arith::Add,
                            op::SUBSTRACT => Arith::Sub,
                            op::MULTIPLY => Arith::Mul,
                            op::DIVIDE => Arith::Div,
                            _ => Arith::Rem,
                        };
                        Some(V::Arith(o, Box::new(self.value(a)?), Box::new(self.value(b)?)))
                    }
                    (op::CONDITIONAL, None, [c, a, b]) => {
                        Some(V::Cond(Box::new(self.bool_node(c)), Box::new(self.value(a)?), Box::new(self.value(b)?)))
                    }
                    _ if self.ty(e) == St::Bool => Some(V::Bool(Box::new(self.try_bool(e)?))),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn lit(l: &LiteralValue) -> Option<Lit> {
    Some(match l {
        LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
        LiteralValue::Int(i) => Lit::Num(*i.inner() as f64),
        LiteralValue::UInt(u) => Lit::Num(*u.inner() as f64),
        LiteralValue::Double(d) => Lit::Num(*d.inner()),
        LiteralValue::String(s) => Lit::Str(s.inner().to_owned()),
        LiteralValue::Null => Lit::Null,
        LiteralValue::Bytes(_) => return None,
    })
}

/// A runtime value, borrowed from the facts or the expression. `None` is absent.
#[derive(Debug, Clone, Copy)]
enum R<'a> {
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Null,
    Arr(&'a [Json]),
    Lits(&'a [Lit]),
    Obj(&'a Map<String, Json>),
}

fn from_json(v: &Json) -> Option<R<'_>> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => R::Bool(*b),
        Json::Number(n) => R::Num(n.as_f64()?),
        Json::String(s) => R::Str(s),
        Json::Array(a) => R::Arr(a),
        Json::Object(o) => R::Obj(o),
    })
}

fn from_lit(l: &Lit) -> R<'_> {
    match l {
        Lit::Num(n) => R::Num(*n),
        Lit::Str(s) => R::Str(s),
        Lit::Bool(b) => R::Bool(*b),
        Lit::Null => R::Null,
    }
}

/// CEL equality: values of different kinds are unequal.
fn equal(a: R<'_>, b: R<'_>) -> bool {
    fn elem<'x>(list: R<'x>, i: usize) -> Option<R<'x>> {
        match list {
            R::Arr(a) => Some(a.get(i).and_then(from_json).unwrap_or(R::Null)),
            R::Lits(l) => l.get(i).map(from_lit),
            _ => None,
        }
    }
    let len = |r: R<'_>| match r {
        R::Arr(a) => Some(a.len()),
        R::Lits(l) => Some(l.len()),
        _ => None,
    };
    match (a, b) {
        (R::Num(x), R::Num(y)) => x == y,
        (R::Str(x), R::Str(y)) => x == y,
        (R::Bool(x), R::Bool(y)) => x == y,
        (R::Null, R::Null) => true,
        (R::Obj(x), R::Obj(y)) => x == y,
        _ => match (len(a), len(b)) {
            (Some(n), Some(m)) => n == m && (0..n).all(|i| matches!((elem(a, i), elem(b, i)), (Some(x), Some(y)) if equal(x, y))),
            _ => false,
        },
    }
}

struct Eval<'f> {
    facts: &'f Map<String, Json>,
    schema: &'f Schema,
}

impl<'f> Eval<'f> {
    fn bool(&self, b: &B) -> bool {
        match b {
            B::Const(c) => *c,
            B::And(v) => v.iter().all(|b| self.bool(b)),
            B::Or(v) => v.iter().any(|b| self.bool(b)),
            B::Not(b) => !self.bool(b),
            B::Cond(c, x, y) => {
                if self.bool(c) {
                    self.bool(x)
                } else {
                    self.bool(y)
                }
            }
            B::Cmp(op, l, r) => {
                let (Some(l), Some(r)) = (self.value(l), self.value(r)) else { return false };
                match op {
                    Cmp::Eq => equal(l, r),
                    Cmp::Ne => !equal(l, r),
                    _ => {
                        let ord = match (l, r) {
                            (R::Num(x), R::Num(y)) => x.partial_cmp(&y),
                            (R::Str(x), R::Str(y)) => Some(x.cmp(y)),
                            (R::Bool(x), R::Bool(y)) => Some(x.cmp(&y)),
                            _ => None,
                        };
                        let Some(ord) = ord else { return false };
                        match op {
                            Cmp::Lt => ord.is_lt(),
                            Cmp::Le => ord.is_le(),
                            Cmp::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        }
                    }
                }
            }
            B::In(l, r) => {
                let (Some(l), Some(r)) = (self.value(l), self.value(r)) else { return false };
                match r {
                    R::Arr(a) => a.iter().any(|x| from_json(x).is_some_and(|x| equal(l, x))),
                    R::Lits(a) => a.iter().any(|x| equal(l, from_lit(x))),
                    R::Obj(o) => matches!(l, R::Str(k) if o.contains_key(k)),
                    _ => false,
                }
            }
            B::Str(f, t, a) => match (self.value(t), self.value(a)) {
                (Some(R::Str(t)), Some(R::Str(a))) => match f {
                    StrFn::Contains => t.contains(a),
                    StrFn::StartsWith => t.starts_with(a),
                    StrFn::EndsWith => t.ends_with(a),
                },
                _ => false,
            },
            B::Has(v, field) => matches!(self.value(v), Some(R::Obj(o)) if o.contains_key(field)),
            B::Truthy(v) => matches!(self.value(v), Some(R::Bool(true))),
            B::Cel(e) => eval_cel(e, self.facts, self.schema),
        }
    }

    fn value<'a>(&'a self, v: &'a V) -> Option<R<'a>> {
        match v {
            V::Lit(l) => Some(from_lit(l)),
            V::List(l) => Some(R::Lits(l)),
            V::Name(name, ty) => {
                let r = from_json(self.facts.get(name)?)?;
                let conforms = matches!(
                    (ty, r),
                    (Ty::Number, R::Num(_))
                        | (Ty::String, R::Str(_))
                        | (Ty::Bool, R::Bool(_))
                        | (Ty::StringList, R::Arr(_))
                        | (Ty::Map, R::Obj(_))
                );
                conforms.then_some(r)
            }
            V::Field(o, f) => match self.value(o)? {
                R::Obj(o) => from_json(o.get(f)?),
                _ => None,
            },
            V::Index(a, i) => match (self.value(a)?, self.value(i)?) {
                (R::Arr(a), R::Num(i)) if i >= 0.0 && i.fract() == 0.0 => from_json(a.get(i as usize)?),
                (R::Lits(a), R::Num(i)) if i >= 0.0 && i.fract() == 0.0 => Some(from_lit(a.get(i as usize)?)),
                (R::Obj(o), R::Str(k)) => from_json(o.get(k)?),
                _ => None,
            },
            V::Size(a) => Some(R::Num(match self.value(a)? {
                R::Str(s) => s.chars().count() as f64,
                R::Arr(a) => a.len() as f64,
                R::Lits(a) => a.len() as f64,
                R::Obj(o) => o.len() as f64,
                _ => return None,
            })),
            V::Arith(op, a, b) => match (self.value(a)?, self.value(b)?) {
                (R::Num(x), R::Num(y)) => Some(R::Num(match op {
                    Arith::Add => x + y,
                    Arith::Sub => x - y,
                    Arith::Mul => x * y,
                    Arith::Div => x / y,
                    Arith::Rem => x % y,
                })),
                _ => None,
            },
            V::Neg(a) => match self.value(a)? {
                R::Num(x) => Some(R::Num(-x)),
                _ => None,
            },
            V::Cond(c, a, b) => {
                if self.bool(c) {
                    self.value(a)
                } else {
                    self.value(b)
                }
            }
            V::Bool(b) => Some(R::Bool(self.bool(b))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fallback: the `cel` interpreter

/// Rewrites integer literals to doubles (JSON numbers are doubles), except list/map indexes.
fn doubles_for_ints(e: &mut IdedExpr, is_index: bool) {
    match &mut e.expr {
        Ast::Literal(l) if !is_index => {
            let d = match l {
                LiteralValue::Int(i) => *i.inner() as f64,
                LiteralValue::UInt(u) => *u.inner() as f64,
                _ => return,
            };
            *l = LiteralValue::Double(d.into());
        }
        Ast::Call(c) => {
            let index = c.func_name == op::INDEX || c.func_name == op::OPT_INDEX;
            if let Some(t) = c.target.as_deref_mut() {
                doubles_for_ints(t, false);
            }
            for (i, a) in c.args.iter_mut().enumerate() {
                doubles_for_ints(a, index && i == 1);
            }
        }
        Ast::Select(s) => doubles_for_ints(&mut s.operand, false),
        Ast::List(l) => l.elements.iter_mut().for_each(|x| doubles_for_ints(x, false)),
        Ast::Map(m) => {
            for en in &mut m.entries {
                match &mut en.expr {
                    EntryExpr::MapEntry(me) => doubles_for_ints(&mut me.value, false),
                    EntryExpr::StructField(f) => doubles_for_ints(&mut f.value, false),
                }
            }
        }
        Ast::Comprehension(c) => {
            // All of it, the macro's bookkeeping included: `exists_one` counts from 0 by 1 and
            // compares with 1, which stays consistent as doubles.
            for x in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                doubles_for_ints(x, false);
            }
        }
        _ => {}
    }
}

fn json_to_cel(v: &Json) -> cel::Value {
    match v {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(a) => cel::Value::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Json::Object(o) => {
            let map: HashMap<cel::objects::Key, cel::Value> =
                o.iter().map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), json_to_cel(v))).collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

struct Facts<'a> {
    facts: &'a Map<String, Json>,
    schema: &'a Schema,
}

impl cel::context::VariableResolver for Facts<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let ty = self.schema.get(name)?;
        let v = self.facts.get(name)?;
        let value = match (ty, v) {
            (_, Json::Null) => return None,
            (Ty::Timestamp, Json::String(s)) => cel::Value::Timestamp(chrono::DateTime::parse_from_rfc3339(s).ok()?),
            (Ty::Timestamp, _) => return None,
            (Ty::Number, Json::Number(_))
            | (Ty::String, Json::String(_))
            | (Ty::Bool, Json::Bool(_))
            | (Ty::StringList, Json::Array(_))
            | (Ty::Map, Json::Object(_)) => json_to_cel(v),
            _ => return None,
        };
        let boxed: Box<dyn cel::common::value::Val> = value.try_into().ok()?;
        Some(CowVal::Owned(boxed))
    }
}

fn eval_cel(e: &IdedExpr, facts: &Map<String, Json>, schema: &Schema) -> bool {
    let resolver = Facts { facts, schema };
    let mut ctx = cel::Context::with_env(ENV.clone());
    ctx.set_variable_resolver(&resolver);
    matches!(ctx.resolve(e), Ok(cel::Value::Bool(true)))
}

#[cfg(test)]
mod tests;
