//! Unit tests for JWKS URL templates and the literal-alternation check.

use std::collections::HashMap;

use crate::auth::template::{UrlTemplate, enumerate_literals};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn literal_alternations_enumerate() {
    assert_eq!(
        sorted(enumerate_literals("a|b|c").expect("abc")),
        ["a", "b", "c"]
    );
    assert_eq!(
        sorted(enumerate_literals("test1|test2").expect("t")),
        ["test1", "test2"]
    );
    assert_eq!(
        sorted(enumerate_literals("(?:x|y)-z").expect("xy")),
        ["x-z", "y-z"]
    );
    assert_eq!(enumerate_literals(r"a\.b").expect("esc"), ["a.b"]);
    assert_eq!(
        sorted(enumerate_literals("(a|b)(c|d)").expect("prod")),
        ["ac", "ad", "bc", "bd"]
    );
}

#[test]
fn non_literals_are_rejected() {
    for body in [
        ".", "a*", "a+", "a?", "[ab]", r"\d", r"\w", "a{2}", "^a", "a$", "(?i)a", "(a", "a)", "a\\",
    ] {
        assert!(enumerate_literals(body).is_err(), "{body}");
    }
    let huge = "(a|b|c|d|e|f|g|h)".repeat(5);
    assert!(
        enumerate_literals(&huge).is_err(),
        "alternative explosion is capped"
    );
}

#[test]
fn resolve_only_accepts_allow_listed_values() {
    let t = UrlTemplate::new("https://idp/{{t}}/jwks", "^(?P<t>a|b)$", "", false).expect("tpl");
    let vars = |v: &str| HashMap::from([("t".to_string(), v.to_string())]);
    assert_eq!(t.resolve(&vars("a")).expect("a"), "https://idp/a/jwks");
    for bad in ["c", "", "a/../b", "evil.com"] {
        assert!(t.resolve(&vars(bad)).is_err(), "{bad}");
    }
    assert!(t.resolve(&HashMap::new()).is_err(), "missing value");
}

#[test]
fn static_endpoints_need_no_regex() {
    let t = UrlTemplate::new("https://idp/jwks", "", "", false).expect("static");
    assert!(t.is_static());
    assert_eq!(t.resolve(&HashMap::new()).expect("url"), "https://idp/jwks");
    assert!(UrlTemplate::new("idp/jwks", "", "", false).is_err());
    assert!(UrlTemplate::new("https://", "", "", false).is_err());
}

#[test]
fn host_placeholders_work_with_allow_list() {
    let t = UrlTemplate::new(
        "https://{{host}}/.well-known/jwks.json",
        "",
        r"^(?P<host>auth\.a\.com|auth\.b\.com)$",
        false,
    )
    .expect("host");
    let vars = HashMap::from([("host".to_string(), "auth.b.com".to_string())]);
    assert_eq!(
        t.resolve(&vars).expect("b"),
        "https://auth.b.com/.well-known/jwks.json"
    );
}
