use super::*;
use proptest::prelude::*;
use serde_json::json;

fn accounts() -> Schema {
    Schema::new()
        .with("category", Ty::String)
        .with("gmv_30d", Ty::Number)
        .with("days_since_visit", Ty::Number)
        .with("rating", Ty::Number)
        .with("name", Ty::String)
        .with("vip", Ty::Bool)
        .with("tags", Ty::StringList)
        .with("opened_at", Ty::Timestamp)
}

fn reports() -> Schema {
    Schema::new()
        .with("kind", Ty::String)
        .with("text", Ty::String)
        .with("tags", Ty::StringList)
        .with("answers", Ty::Map)
        .with("city_id", Ty::String)
}

fn facts(v: Json) -> Map<String, Json> {
    v.as_object().unwrap().clone()
}

fn err(src: &str, schema: &Schema) -> ExprError {
    Expr::compile(src, schema).expect_err(src)
}

#[test]
fn expr_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Expr>();
}

#[test]
fn valid_expressions_compile_and_match() {
    let s = accounts();
    let acct = facts(json!({"category": "restaurant", "gmv_30d": 6000, "days_since_visit": 20,
        "rating": 4.5, "name": "Lao Wang Noodles", "vip": true, "tags": ["halal", "chain"],
        "opened_at": "2024-05-01T08:00:00Z"}));
    for (src, want) in [
        ("category == 'restaurant' && gmv_30d > 5000 && days_since_visit > 14", true),
        ("category == \"restaurant\" && gmv_30d < 1000", false),
        ("gmv_30d > 5999.5 && gmv_30d >= 6000 && gmv_30d == 6000.0 && gmv_30d == 6000", true),
        ("category in ['restaurant', 'cafe']", true),
        ("'chain' in tags && !('closed' in tags)", true),
        ("name.startsWith('Lao') && name.contains('Noodles') && name.endsWith('s')", true),
        ("size(tags) == 2 && tags.size() > 1 && size(name) > 3", true),
        ("vip && rating >= 4.5", true),
        ("vip ? gmv_30d > 1 : false", true),
        ("(gmv_30d + 1000) * 2 > 13000 && -rating < 0", true),
        ("category != 'cafe' || gmv_30d < 0", true),
        ("tags[0] == 'halal'", true),
        ("tags.exists(t, t.startsWith('ch'))", true),
        ("tags.all(t, size(t) > 10)", false),
        ("tags.exists_one(t, t == 'chain')", true),
        ("opened_at > timestamp('2024-01-01T00:00:00Z')", true),
        ("name.matches('^Lao')", true),
        ("dyn(category) == 'restaurant'", true),
    ] {
        let e = Expr::compile(src, &s).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(e.matches(&acct), want, "{src}");
        assert_eq!(e.matches_with_cel(&acct), want, "cel only: {src}");
        assert_eq!(e.source(), src);
    }
    // `%` on numbers: natively only (CEL has no `%` on doubles).
    assert!(Expr::compile("days_since_visit % 7 == 6", &s).unwrap().matches(&acct));
    // The common subset is native; macros, timestamps and regexes go to cel.
    assert!(Expr::compile("category == 'x' && gmv_30d > 1 && 'a' in tags", &s).unwrap().is_native());
    assert!(!Expr::compile("tags.exists(t, t == 'a')", &s).unwrap().is_native());
}

#[test]
fn numbers_are_doubles_whatever_the_json() {
    let s = accounts();
    let e = Expr::compile("gmv_30d > 5000", &s).unwrap();
    for (v, want) in [(json!(6000), true), (json!(6000.5), true), (json!(5000), false), (json!(4999.9), false)] {
        assert_eq!(e.matches(&facts(json!({ "gmv_30d": v }))), want, "{v}");
    }
    let e = Expr::compile("tags.exists(t, gmv_30d + 1 > 5000.5)", &s).unwrap();
    assert!(e.matches(&facts(json!({"gmv_30d": 5000, "tags": ["a"]}))));
}

#[test]
fn absent_names_make_comparisons_false() {
    let s = accounts();
    let empty = Map::new();
    for src in [
        "gmv_30d > 5000",
        "gmv_30d <= 5000",
        "category == 'x'",
        "category != 'x'",
        "'a' in tags",
        "name.contains('a')",
        "vip",
        "size(name) >= 0",
    ] {
        assert!(!Expr::compile(src, &s).unwrap().matches(&empty), "{src}");
    }
    // `!` of a false comparison is true; `||` with a present side holds.
    assert!(Expr::compile("!(gmv_30d > 5000)", &s).unwrap().matches(&empty));
    let e = Expr::compile("gmv_30d > 5000 || category == 'cafe'", &s).unwrap();
    assert!(e.matches(&facts(json!({"category": "cafe"}))));
    // A fact of the wrong JSON type is absent; null is absent.
    let e = Expr::compile("gmv_30d > 5000 || gmv_30d <= 5000", &s).unwrap();
    assert!(!e.matches(&facts(json!({"gmv_30d": "lots"}))));
    assert!(!e.matches(&facts(json!({"gmv_30d": null}))));
}

#[test]
fn report_facts() {
    let s = reports();
    let r = facts(json!({"kind": "intel", "text": "Competitor A offers a 30% subsidy here",
        "tags": ["competitor_subsidy", "A"], "answers": {"signed": true, "competitor": "A", "amount": 300},
        "city_id": "shanghai"}));
    for (src, want) in [
        ("kind == 'intel' && 'competitor_subsidy' in tags", true),
        ("text.contains('subsidy')", true),
        ("answers.signed == true", true),
        ("answers.signed", true),
        ("answers.competitor in ['A', 'B'] && answers.amount > 250", true),
        ("has(answers.storefront)", false),
        ("has(answers.signed) && answers['competitor'] == 'A'", true),
        ("answers.missing == true", false),
        ("answers.missing != true", false),
        ("'signed' in answers", true),
    ] {
        let e = Expr::compile(src, &s).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(e.matches(&r), want, "{src}");
    }
    let no_answers = facts(json!({"kind": "intel", "text": "nothing", "tags": []}));
    assert!(!Expr::compile("answers.signed == true", &s).unwrap().matches(&no_answers));
}

#[test]
fn syntax_errors_have_positions() {
    let s = accounts();
    let e = err("gmv_30d >", &s);
    assert_eq!((e.kind, e.position, e.line, e.column), (ExprErrorKind::Syntax, 9, 1, 10));
    let e = err("category = 'x'", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Syntax, 9));
    let e = err("gmv_30d > 1 days_since_visit", &s);
    assert_eq!((e.kind, e.position, e.column), (ExprErrorKind::Syntax, 12, 13));
    // Multi-line, and non-ASCII before the error: the byte offset, the column in characters.
    let e = err("category == '上海' &&\n  (gmv_30d > 1", &s);
    assert_eq!((e.kind, e.line, e.column), (ExprErrorKind::Syntax, 2, 15));
    assert_eq!(e.position, "category == '上海' &&\n  (gmv_30d > 1".len());
    let e = err("category == '上海' &&", &s);
    assert_eq!((e.position, e.column), ("category == '上海' &&".len(), 20));
}

#[test]
fn unknown_names_point_at_the_name() {
    let s = accounts();
    let e = err("category == 'x' && revenue > 5", &s);
    assert_eq!((e.kind, e.position, e.column), (ExprErrorKind::UnknownName, 19, 20));
    assert!(e.message.contains("revenue"), "{}", e.message);
    let e = err("name == '上海' || owner.id == 'u1'", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::UnknownName, "name == '上海' || ".len()));
    let e = err("vip && frobnicate(name)", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::UnknownName, 7));
    // Comprehension variables are in scope inside their macro only.
    assert!(Expr::compile("tags.exists(t, t == 'a')", &s).is_ok());
    let e = err("tags.exists(t, t == 'a') && t == 'b'", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::UnknownName, 28));
}

#[test]
fn type_errors_point_at_the_operand() {
    let s = accounts();
    let e = err("category > 5", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 11));
    let e = err("days_since_visit > 14 && gmv_30d == 'x'", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 36));
    let e = err("'x' == gmv_30d", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 0));
    let e = err("gmv_30d.contains('x')", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 0));
    let e = err("5 in tags", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 0));
    let e = err("'a' in name", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 7));
    let e = err("category && vip", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 0));
    let e = err("vip && gmv_30d + 'a' > 1", &s);
    assert_eq!((e.kind, e.position), (ExprErrorKind::Type, 17));
    let e = err("category.name == 'x'", &s);
    assert_eq!(e.kind, ExprErrorKind::Type);
    // What can't be typed is allowed: map members, dyn().
    assert!(Expr::compile("answers.amount > 5 && answers.kind == 'x'", &reports()).is_ok());
}

#[test]
fn non_boolean_expressions_are_refused() {
    let s = accounts();
    for src in ["gmv_30d + 1", "category", "'x'", "tags", "size(tags)", "vip ? 1 : 2"] {
        let e = err(src, &s);
        assert_eq!((e.kind, e.position), (ExprErrorKind::NotBoolean, 0), "{src}");
    }
    let e = err("  gmv_30d * 2", &s);
    assert_eq!((e.kind, e.position, e.column), (ExprErrorKind::NotBoolean, 2, 3));
    // Unknown type at compile time: allowed, false unless true at run time.
    assert!(Expr::compile("answers.signed", &reports()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Property: the expression selects exactly what the equivalent Rust predicate selects.

#[derive(Debug, Clone)]
struct Account {
    category: Option<&'static str>,
    gmv_30d: Option<f64>,
    days_since_visit: Option<i64>,
    rating: Option<f64>,
}

impl Account {
    fn facts(&self) -> Map<String, Json> {
        let mut m = Map::new();
        if let Some(c) = self.category {
            m.insert("category".into(), json!(c));
        }
        if let Some(g) = self.gmv_30d {
            // Integral values as JSON ints half the time, to exercise int/double mixing.
            let v = if g.fract() == 0.0 && (g as i64) % 2 == 0 { json!(g as i64) } else { json!(g) };
            m.insert("gmv_30d".into(), v);
        }
        if let Some(d) = self.days_since_visit {
            m.insert("days_since_visit".into(), json!(d));
        }
        if let Some(r) = self.rating {
            m.insert("rating".into(), json!(r));
        }
        m
    }
}

const CATEGORIES: [&str; 4] = ["restaurant", "cafe", "grocery", "pharmacy"];

#[derive(Debug, Clone, Copy)]
enum Field {
    Category,
    Gmv,
    Days,
    Rating,
}

#[derive(Debug, Clone)]
enum F {
    Cmp(Field, Cmp, f64, &'static str),
    In(Vec<&'static str>),
    And(Box<F>, Box<F>),
    Or(Box<F>, Box<F>),
}

fn op_src(op: Cmp) -> &'static str {
    match op {
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
    }
}

fn num_src(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as i64) } else { format!("{x:?}") }
}

impl F {
    fn src(&self) -> String {
        match self {
            F::Cmp(Field::Category, op, _, s) => format!("category {} '{s}'", op_src(*op)),
            F::Cmp(f, op, x, _) => {
                let name = match f {
                    Field::Gmv => "gmv_30d",
                    Field::Days => "days_since_visit",
                    _ => "rating",
                };
                format!("{name} {} {}", op_src(*op), num_src(*x))
            }
            F::In(list) => {
                let items: Vec<String> = list.iter().map(|c| format!("'{c}'")).collect();
                format!("category in [{}]", items.join(", "))
            }
            F::And(a, b) => format!("({} && {})", a.src(), b.src()),
            F::Or(a, b) => format!("({} || {})", a.src(), b.src()),
        }
    }

    fn eval(&self, a: &Account) -> bool {
        fn cmp<T: PartialOrd>(op: Cmp, l: T, r: T) -> bool {
            match op {
                Cmp::Eq => l == r,
                Cmp::Ne => l != r,
                Cmp::Lt => l < r,
                Cmp::Le => l <= r,
                Cmp::Gt => l > r,
                Cmp::Ge => l >= r,
            }
        }
        match self {
            F::Cmp(Field::Category, op, _, s) => a.category.is_some_and(|c| cmp(*op, c, *s)),
            F::Cmp(Field::Gmv, op, x, _) => a.gmv_30d.is_some_and(|v| cmp(*op, v, *x)),
            F::Cmp(Field::Days, op, x, _) => a.days_since_visit.is_some_and(|v| cmp(*op, v as f64, *x)),
            F::Cmp(Field::Rating, op, x, _) => a.rating.is_some_and(|v| cmp(*op, v, *x)),
            F::In(list) => a.category.is_some_and(|c| list.contains(&c)),
            F::And(l, r) => l.eval(a) && r.eval(a),
            F::Or(l, r) => l.eval(a) || r.eval(a),
        }
    }
}

fn account() -> impl Strategy<Value = Account> {
    (
        proptest::option::weighted(0.85, proptest::sample::select(&CATEGORIES[..])),
        proptest::option::weighted(0.85, prop_oneof![(0i64..10_000).prop_map(|x| x as f64), 0.0f64..10_000.0]),
        proptest::option::weighted(0.85, 0i64..60),
        proptest::option::weighted(0.85, (0u32..=50).prop_map(|x| x as f64 / 10.0)),
    )
        .prop_map(|(category, gmv_30d, days_since_visit, rating)| Account { category, gmv_30d, days_since_visit, rating })
}

fn cmp_op() -> impl Strategy<Value = Cmp> {
    proptest::sample::select(vec![Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge])
}

fn filter() -> impl Strategy<Value = F> {
    let leaf = prop_oneof![
        (prop_oneof![Just(Cmp::Eq), Just(Cmp::Ne)], proptest::sample::select(&CATEGORIES[..])).prop_map(|(op, c)| F::Cmp(
            Field::Category,
            op,
            0.0,
            c
        )),
        (cmp_op(), prop_oneof![(0i64..10_000).prop_map(|x| x as f64), (0i64..100_000).prop_map(|x| x as f64 / 10.0)])
            .prop_map(|(op, x)| F::Cmp(Field::Gmv, op, x, "")),
        (cmp_op(), 0i64..60).prop_map(|(op, x)| F::Cmp(Field::Days, op, x as f64, "")),
        (cmp_op(), (0u32..=50).prop_map(|x| x as f64 / 10.0)).prop_map(|(op, x)| F::Cmp(Field::Rating, op, x, "")),
        proptest::sample::subsequence(&CATEGORIES[..], 1..=3).prop_map(F::In),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| F::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| F::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn matches_selects_what_the_rust_predicate_selects(
        f in filter(),
        accts in proptest::collection::vec(account(), 1..40),
    ) {
        let src = f.src();
        let e = Expr::compile(&src, &accounts()).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
        prop_assert!(e.is_native());
        for a in &accts {
            let facts = a.facts();
            prop_assert_eq!(e.matches(&facts), f.eval(a), "{} on {:?}", src, a);
            // The cel interpreter agrees too (no `!` in this grammar, so errors on absent
            // names and false comparisons coincide).
            prop_assert_eq!(e.matches_with_cel(&facts), f.eval(a), "cel: {} on {:?}", src, a);
        }
    }
}
