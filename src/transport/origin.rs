//! `client.allowed_origins`: which browser origins may open connections.
//!
//! A request without an `Origin` header (a non-browser client) always
//! passes. With an empty list every request that carries an Origin is
//! refused: a cookie-authenticated backend must not be reachable from any
//! page on the web. Patterns are globs (`*` matches any run of characters)
//! compared with the lower-cased origin, byte for byte, so look-alike
//! Unicode characters never match an ASCII pattern.

/// Compiled origin patterns.
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginCheck {
    patterns: Vec<String>,
}

impl OriginCheck {
    /// Compiles `client.allowed_origins`.
    pub(crate) fn new(allowed: &[String]) -> Self {
        Self {
            patterns: allowed.iter().map(|p| p.to_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Origin` header value may connect.
    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.to_lowercase();
        self.patterns
            .iter()
            .any(|p| glob_match(p.as_bytes(), origin.as_bytes()))
    }
}

/// `*` matches any sequence, `?` one byte; everything else literally.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_rejects_any_origin_but_allows_none() {
        let c = OriginCheck::new(&[]);
        assert!(c.allows(None));
        assert!(!c.allows(Some("https://example.com")));
    }

    #[test]
    fn globs_are_case_insensitive_and_exact() {
        let c = OriginCheck::new(&[
            "https://*.Example.com".into(),
            "http://localhost:3000".into(),
        ]);
        assert!(c.allows(Some("https://app.example.com")));
        assert!(c.allows(Some("HTTPS://APP.EXAMPLE.COM")));
        assert!(c.allows(Some("http://localhost:3000")));
        assert!(!c.allows(Some("http://localhost:30001")));
        assert!(!c.allows(Some("https://example.com.evil.org")));
        // Cyrillic "е" in place of the Latin "e".
        assert!(!c.allows(Some("https://app.\u{0435}xample.com")));
        assert!(!c.allows(Some("null")));
    }

    #[test]
    fn star_allows_all() {
        assert!(OriginCheck::new(&["*".into()]).allows(Some("file://")));
    }
}
