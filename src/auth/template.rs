//! JWKS endpoint templates (`https://idp/{{tenant}}/jwks.json`) and their
//! safety check (CVE-2026-32301).
//!
//! Placeholder values come from named groups of `issuer_regex` /
//! `audience_regex`, matched against claims of a token that is *not yet
//! verified*. So at startup every placeholder's group must be an explicit
//! alternation of literals, e.g. `(?P<tenant>acme|globex)`; the literals form
//! an allow-list that is checked again at fetch time. Only
//! `insecure_skip_jwks_endpoint_safety_check` lifts this, and even then values
//! are limited to a URL-inert character set.

use std::collections::{HashMap, HashSet};

/// Upper bound on how many strings one group may enumerate.
const MAX_ALTERNATIVES: usize = 1024;

enum Part {
    Lit(String),
    Var(String),
}

/// A parsed endpoint; `resolve` fills placeholders from allow-listed values.
pub(crate) struct UrlTemplate {
    parts: Vec<Part>,
    /// Per placeholder: the allowed values, or `None` when the safety check is off.
    allowed: HashMap<String, Option<HashSet<String>>>,
}

impl UrlTemplate {
    /// Parses and validates `endpoint` against the regexes; errors name the config key.
    pub(crate) fn new(
        endpoint: &str,
        issuer_regex: &str,
        audience_regex: &str,
        insecure: bool,
    ) -> Result<Self, String> {
        const KEY: &str = "client.token.jwks_public_endpoint";
        let parts = split_placeholders(endpoint);
        let probe: String = parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => s.as_str(),
                Part::Var(_) => "x",
            })
            .collect();
        check_url(&probe).map_err(|e| format!("{KEY}: {e}"))?;

        let mut allowed = HashMap::new();
        for part in &parts {
            let Part::Var(name) = part else { continue };
            if allowed.contains_key(name) {
                continue;
            }
            if insecure {
                allowed.insert(name.clone(), None);
                continue;
            }
            let mut values = HashSet::new();
            let mut found = false;
            for (cfg_key, pattern) in [
                ("issuer_regex", issuer_regex),
                ("audience_regex", audience_regex),
            ] {
                let Some(body) = named_group_body(pattern, name) else {
                    continue;
                };
                found = true;
                let lits = enumerate_literals(body).map_err(|e| {
                    format!(
                        "client.token.{cfg_key}: named group {name:?} is used in the JWKS endpoint \
                         template and must be an explicit list of allowed values like \
                         (?P<{name}>value1|value2): {e}"
                    )
                })?;
                for v in lits {
                    if !is_inert_value(&v) {
                        return Err(format!(
                            "client.token.{cfg_key}: value {v:?} of group {name:?} is not allowed \
                             in a JWKS URL (empty, '.', '..' or contains characters outside \
                             A-Z a-z 0-9 - . _ ~ :)"
                        ));
                    }
                    values.insert(v);
                }
            }
            if !found {
                return Err(format!(
                    "{KEY}: placeholder {{{{{name}}}}} has no named group in \
                     client.token.issuer_regex or client.token.audience_regex"
                ));
            }
            allowed.insert(name.clone(), Some(values));
        }
        Ok(Self { parts, allowed })
    }

    /// True when the endpoint has no placeholders.
    pub(crate) fn is_static(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Builds the fetch URL. Refuses values that are missing or not allow-listed.
    pub(crate) fn resolve(&self, vars: &HashMap<String, String>) -> Result<String, String> {
        let mut url = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => url.push_str(s),
                Part::Var(name) => {
                    let value = vars
                        .get(name)
                        .ok_or("jwks: template value missing from issuer/audience")?;
                    let ok = match self.allowed.get(name) {
                        Some(Some(set)) => set.contains(value),
                        Some(None) => is_inert_value(value),
                        None => false,
                    };
                    if !ok {
                        return Err("jwks: template value is not allowed".into());
                    }
                    url.push_str(value);
                }
            }
        }
        check_url(&url)?;
        Ok(url)
    }
}

/// Splits `{{name}}` placeholders out of `s`.
fn split_placeholders(mut s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    while let Some(start) = s.find("{{") {
        let rest = &s[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        if start > 0 {
            parts.push(Part::Lit(s[..start].to_string()));
        }
        parts.push(Part::Var(rest[..end].trim().to_string()));
        s = &rest[end + 2..];
    }
    if !s.is_empty() {
        parts.push(Part::Lit(s.to_string()));
    }
    parts
}

/// An http(s) URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("endpoint must have http:// or https:// scheme".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("endpoint URL has no host".into());
    }
    Ok(())
}

/// A value that cannot change the URL's structure: no `/`, `?`, `#`, `@`, `%`, spaces.
fn is_inert_value(v: &str) -> bool {
    !v.is_empty()
        && v != "."
        && v != ".."
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
}

/// Index just past the character class that opens at `b[i] == b'['`.
fn skip_class(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if b.get(j) == Some(&b'^') {
        j += 1;
    }
    if b.get(j) == Some(&b']') {
        j += 1;
    }
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'[' if b.get(j + 1) == Some(&b':') => {
                j += 2;
                while j + 1 < b.len() && !(b[j] == b':' && b[j + 1] == b']') {
                    j += 1;
                }
                j += 2;
            }
            b']' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// Index of the `)` closing the group whose body starts at `start`.
fn closing_paren(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'[' => j = skip_class(b, j),
            b'(' => {
                depth += 1;
                j += 1;
            }
            b')' if depth == 0 => return Some(j),
            b')' => {
                depth -= 1;
                j += 1;
            }
            _ => j += 1,
        }
    }
    None
}

/// Source text of the body of the named group `name` in `pattern`.
fn named_group_body<'p>(pattern: &'p str, name: &str) -> Option<&'p str> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'[' => i = skip_class(b, i),
            b'(' => {
                let rest = &pattern[i + 1..];
                let after = rest.strip_prefix("?P<").or_else(|| rest.strip_prefix("?<"));
                if let Some(after) = after
                    && let Some(end) = after.find('>')
                    && &after[..end] == name
                {
                    let body_start = i + 1 + (rest.len() - after.len()) + end + 1;
                    let body_end = closing_paren(b, body_start)?;
                    return Some(&pattern[body_start..body_end]);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// All strings a group body can match, if it is built only from literals,
/// escaped punctuation, `|` and nested groups. Anything else is an error.
pub(crate) fn enumerate_literals(body: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut pos = 0;
    alternation(&chars, &mut pos, 0)
}

fn alternation(c: &[char], pos: &mut usize, depth: usize) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = vec![String::new()];
    loop {
        let Some(&ch) = c.get(*pos) else {
            if depth > 0 {
                return Err("unbalanced parenthesis".into());
            }
            out.extend(cur);
            return Ok(out);
        };
        *pos += 1;
        match ch {
            '|' => out.append(&mut std::mem::replace(&mut cur, vec![String::new()])),
            ')' if depth > 0 => {
                out.extend(cur);
                return Ok(out);
            }
            '(' => {
                if c.get(*pos) == Some(&'?') {
                    let rest: String = c[*pos..].iter().take(3).collect();
                    if rest.starts_with("?:") {
                        *pos += 2;
                    } else if rest.starts_with("?P<") || rest.starts_with("?<") {
                        while c.get(*pos).is_some_and(|&x| x != '>') {
                            *pos += 1;
                        }
                        *pos += 1;
                    } else {
                        return Err("regex flags are not allowed".into());
                    }
                }
                let sub = alternation(c, pos, depth + 1)?;
                if cur.len().saturating_mul(sub.len()) > MAX_ALTERNATIVES {
                    return Err("too many alternatives".into());
                }
                cur = cur
                    .iter()
                    .flat_map(|p| sub.iter().map(move |s| format!("{p}{s}")))
                    .collect();
            }
            '\\' => {
                let esc = *c.get(*pos).ok_or("trailing backslash")?;
                *pos += 1;
                if !esc.is_ascii_punctuation() {
                    return Err(format!("escape \\{esc} is not a literal"));
                }
                cur.iter_mut().for_each(|s| s.push(esc));
            }
            '^' | '$' | '.' | '*' | '+' | '?' | '[' | ']' | '{' | '}' | ')' => {
                return Err(format!("regex operator {ch:?} is not allowed"));
            }
            other => cur.iter_mut().for_each(|s| s.push(other)),
        }
        if out.len() + cur.len() > MAX_ALTERNATIVES {
            return Err("too many alternatives".into());
        }
    }
}
