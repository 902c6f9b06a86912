//! Publication filtering by tags: the `tf` filter of a subscribe request.
//!
//! A filter is a tree of [`FilterNode`]s. A leaf (`op` empty) compares the
//! publication tag `key` with `cmp`: `eq`, `neq`, `in`, `nin`, `ex`
//! (exists), `nex` (does not exist), `sw` / `ew` / `ct` (starts with, ends
//! with, contains) and the decimal comparisons `gt`, `gte`, `lt`, `lte`.
//! Inner nodes combine children with `and`, `or` (at least one child) and
//! `not` (exactly one). A missing tag never matches `eq`, `in`, the string
//! and the numeric comparisons, and always matches `neq` and `nin`.
//!
//! [`validate`] runs once at subscribe time; beyond Centrifugo's shape
//! checks it bounds the tree (depth and node count), so matching is cheap
//! and a hostile filter cannot recurse deeply. [`matches`] runs for each
//! publication and for each recovered one.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::proto::client::FilterNode;

/// Deepest allowed tree (a leaf alone has depth 1).
pub(crate) const MAX_DEPTH: usize = 16;
/// Most nodes in one filter.
pub(crate) const MAX_NODES: usize = 128;

/// Checks that `f` is a well-formed filter within the limits; the error
/// says what is wrong (the client gets error 107).
pub(crate) fn validate(f: &FilterNode) -> Result<(), String> {
    let mut nodes = 0;
    check(f, 1, &mut nodes)
}

fn check(f: &FilterNode, depth: usize, nodes: &mut usize) -> Result<(), String> {
    *nodes += 1;
    if depth > MAX_DEPTH {
        return Err(format!("filter deeper than {MAX_DEPTH} levels"));
    }
    if *nodes > MAX_NODES {
        return Err(format!("filter has more than {MAX_NODES} nodes"));
    }
    match f.op.as_str() {
        "" => check_leaf(f),
        "and" | "or" => {
            if f.nodes.is_empty() {
                return Err(format!("{} node must have at least one child", f.op));
            }
            f.nodes.iter().try_for_each(|c| check(c, depth + 1, nodes))
        }
        "not" => match f.nodes.as_slice() {
            [child] => check(child, depth + 1, nodes),
            _ => Err("not node must have exactly one child".into()),
        },
        op => Err(format!("invalid op {op:?}")),
    }
}

fn check_leaf(f: &FilterNode) -> Result<(), String> {
    let cmp = f.cmp.as_str();
    match cmp {
        "eq" | "neq" | "sw" | "ew" | "ct" | "gt" | "gte" | "lt" | "lte" => {
            if f.val.is_empty() {
                return Err(format!("{cmp} comparison requires val"));
            }
            if !f.vals.is_empty() {
                return Err(format!("{cmp} comparison must not use vals"));
            }
        }
        "in" | "nin" => {
            if f.vals.is_empty() {
                return Err(format!("{cmp} comparison requires non-empty vals"));
            }
            if !f.val.is_empty() {
                return Err(format!("{cmp} comparison must not use val"));
            }
        }
        "ex" | "nex" => {
            if !f.val.is_empty() || !f.vals.is_empty() {
                return Err(format!("{cmp} comparison must not use val or vals"));
            }
        }
        "" => return Err("leaf node must have cmp set".into()),
        other => return Err(format!("unknown comparison operator {other:?}")),
    }
    if f.key.is_empty() && cmp != "ex" && cmp != "nex" {
        return Err("leaf node requires key".into());
    }
    if !f.nodes.is_empty() {
        return Err("leaf node must not have children".into());
    }
    Ok(())
}

/// Whether a publication with `tags` passes the (validated) filter `f`.
pub(crate) fn matches(f: &FilterNode, tags: &BTreeMap<String, String>) -> bool {
    match f.op.as_str() {
        "" => leaf(f, tags.get(&f.key).map(String::as_str)),
        "and" => f.nodes.iter().all(|c| matches(c, tags)),
        "or" => f.nodes.iter().any(|c| matches(c, tags)),
        "not" => f.nodes.first().is_some_and(|c| !matches(c, tags)),
        _ => false,
    }
}

fn leaf(f: &FilterNode, value: Option<&str>) -> bool {
    let has = |v: &str| f.vals.iter().any(|x| x == v);
    match (f.cmp.as_str(), value) {
        ("eq", Some(v)) => v == f.val,
        ("neq", v) => v != Some(f.val.as_str()),
        ("in", Some(v)) => has(v),
        // A missing tag compares as the empty string, as Centrifugo does.
        ("in", None) => has(""),
        ("nin", v) => !has(v.unwrap_or("")),
        ("ex", v) => v.is_some(),
        ("nex", v) => v.is_none(),
        ("sw", Some(v)) => v.starts_with(&f.val),
        ("ew", Some(v)) => v.ends_with(&f.val),
        ("ct", Some(v)) => v.contains(&f.val),
        (cmp @ ("gt" | "gte" | "lt" | "lte"), Some(v)) => {
            match (Decimal::parse(v), Decimal::parse(&f.val)) {
                (Some(a), Some(b)) => {
                    let o = a.cmp(&b);
                    match cmp {
                        "gt" => o == Ordering::Greater,
                        "gte" => o != Ordering::Less,
                        "lt" => o == Ordering::Less,
                        _ => o != Ordering::Greater,
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// An exact decimal (`-12.50`, `3`, `.5`) for the numeric comparisons:
/// compared digit by digit, so no precision is lost however long it is.
#[derive(Debug, PartialEq, Eq)]
struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        // -0 equals 0.
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Self {
            negative,
            int,
            frac,
        })
    }

    fn magnitude_cmp(&self, other: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_node(key: &str, cmp: &str, val: &str, vals: &[&str]) -> FilterNode {
        FilterNode {
            key: key.into(),
            cmp: cmp.into(),
            val: val.into(),
            vals: vals.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    fn node(op: &str, nodes: Vec<FilterNode>) -> FilterNode {
        FilterNode {
            op: op.into(),
            nodes,
            ..Default::default()
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn leaves_compare_as_documented() {
        let t = tags(&[("ticker", "AAPL"), ("price", "101.50"), ("side", "buy")]);
        let yes = [
            leaf_node("ticker", "eq", "AAPL", &[]),
            leaf_node("ticker", "neq", "MSFT", &[]),
            leaf_node("missing", "neq", "x", &[]),
            leaf_node("ticker", "in", "", &["MSFT", "AAPL"]),
            leaf_node("ticker", "nin", "", &["MSFT"]),
            leaf_node("ticker", "ex", "", &[]),
            leaf_node("missing", "nex", "", &[]),
            leaf_node("ticker", "sw", "AA", &[]),
            leaf_node("ticker", "ew", "PL", &[]),
            leaf_node("ticker", "ct", "AP", &[]),
            leaf_node("price", "gt", "101.4999999999999999999", &[]),
            leaf_node("price", "gte", "101.5", &[]),
            leaf_node("price", "lt", "1000", &[]),
            leaf_node("price", "lte", "101.500", &[]),
        ];
        for f in &yes {
            assert_eq!(validate(f), Ok(()), "{f:?}");
            assert!(matches(f, &t), "{f:?}");
        }
        let no = [
            leaf_node("ticker", "eq", "MSFT", &[]),
            leaf_node("missing", "eq", "x", &[]),
            leaf_node("ticker", "in", "", &["MSFT"]),
            leaf_node("missing", "sw", "x", &[]),
            leaf_node("side", "gt", "1", &[]),
            leaf_node("missing", "gt", "1", &[]),
            leaf_node("price", "lt", "-5", &[]),
        ];
        for f in &no {
            assert!(!matches(f, &t), "{f:?}");
        }
    }

    #[test]
    fn and_or_not_combine() {
        let t = tags(&[("a", "1"), ("b", "2")]);
        let a1 = leaf_node("a", "eq", "1", &[]);
        let b3 = leaf_node("b", "eq", "3", &[]);
        assert!(!matches(&node("and", vec![a1.clone(), b3.clone()]), &t));
        assert!(matches(&node("or", vec![a1.clone(), b3.clone()]), &t));
        assert!(matches(&node("not", vec![b3.clone()]), &t));
        assert!(!matches(&node("not", vec![a1]), &t));
    }

    #[test]
    fn malformed_filters_are_refused() {
        let bad = [
            leaf_node("a", "", "1", &[]),
            leaf_node("a", "like", "1", &[]),
            leaf_node("a", "eq", "", &[]),
            leaf_node("a", "eq", "1", &["1"]),
            leaf_node("a", "in", "", &[]),
            leaf_node("a", "in", "x", &["1"]),
            leaf_node("a", "ex", "x", &[]),
            leaf_node("", "eq", "1", &[]),
            node("and", vec![]),
            node("not", vec![]),
            node("xor", vec![leaf_node("a", "ex", "", &[])]),
        ];
        for f in &bad {
            assert!(validate(f).is_err(), "{f:?}");
        }
        let mut deep = leaf_node("a", "ex", "", &[]);
        for _ in 0..MAX_DEPTH {
            deep = node("not", vec![deep]);
        }
        assert!(validate(&deep).is_err(), "too deep");
        let wide = node("or", vec![leaf_node("a", "ex", "", &[]); MAX_NODES]);
        assert!(validate(&wide).is_err(), "too many nodes");
        let fits = node("or", vec![leaf_node("a", "ex", "", &[]); MAX_NODES - 1]);
        assert_eq!(validate(&fits), Ok(()));
    }

    #[test]
    fn decimals_compare_exactly() {
        let d = |s| Decimal::parse(s).expect(s);
        assert!(d("10") > d("9.99"));
        assert!(d("-1") < d("0"));
        assert!(d("-2") < d("-1.5"));
        assert_eq!(d("-0").cmp(&d("0.000")), Ordering::Equal);
        assert_eq!(d("007.10").cmp(&d("7.1")), Ordering::Equal);
        assert!(d(".5") < d("1"));
        for bad in ["", "-", ".", "1e5", "abc", "1.2.3"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }
}
