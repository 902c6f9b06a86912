//! Channel-name patterns for the `channels` method, in the syntax of
//! gobwas/glob (which Centrifugo uses) compiled without separators:
//!
//! * `*` and `**` match any sequence of characters (also empty);
//! * `?` matches one character;
//! * `[abc]`, `[a-z]` match one character of the class, `[!abc]`,
//!   `[!a-z]` one character outside it;
//! * `{a,b*,c}` matches any of the comma-separated sub-patterns (nested
//!   groups allowed);
//! * `\` makes the next character literal.
//!
//! Everything else matches itself. An unclosed `[` or `{`, an empty class
//! or a trailing `\` is an error.

use std::fmt;

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError(&'static str);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid pattern: {}", self.0)
    }
}

impl std::error::Error for GlobError {}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A literal character.
    Char(char),
    /// `*` or `**`: any run of characters.
    Any,
    /// `?`: exactly one character.
    Single,
    /// `[...]`: one character in (or, negated, outside) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `{...}`: one of the alternatives.
    Alt(Vec<Vec<Token>>),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let tokens = parse_seq(&chars, &mut pos, false)?;
        if pos != chars.len() {
            // Only a group terminator can stop the top-level sequence early,
            // and outside a group those are parsed as literals.
            return Err(GlobError("unexpected character"));
        }
        Ok(Self { tokens })
    }

    /// True when the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        matches(&self.tokens, &[], &chars)
    }
}

/// Parses tokens until the end of input or, inside a group, until an
/// unescaped `,` or `}` (left unconsumed).
fn parse_seq(p: &[char], pos: &mut usize, in_group: bool) -> Result<Vec<Token>, GlobError> {
    let mut out = Vec::new();
    while let Some(&c) = p.get(*pos) {
        match c {
            ',' | '}' if in_group => break,
            '\\' => {
                let next = p.get(*pos + 1).ok_or(GlobError("trailing escape"))?;
                out.push(Token::Char(*next));
                *pos += 2;
            }
            '*' => {
                while p.get(*pos) == Some(&'*') {
                    *pos += 1;
                }
                out.push(Token::Any);
            }
            '?' => {
                out.push(Token::Single);
                *pos += 1;
            }
            '[' => {
                *pos += 1;
                out.push(parse_class(p, pos)?);
            }
            '{' => {
                *pos += 1;
                out.push(parse_alt(p, pos)?);
            }
            _ => {
                out.push(Token::Char(c));
                *pos += 1;
            }
        }
    }
    Ok(out)
}

/// Parses a class body after `[` up to and including `]`.
fn parse_class(p: &[char], pos: &mut usize) -> Result<Token, GlobError> {
    let negated = p.get(*pos) == Some(&'!');
    if negated {
        *pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = match p.get(*pos) {
            None => return Err(GlobError("unclosed character class")),
            Some(']') => {
                *pos += 1;
                break;
            }
            Some('\\') => {
                *pos += 1;
                *p.get(*pos).ok_or(GlobError("trailing escape"))?
            }
            Some(&c) => c,
        };
        *pos += 1;
        if p.get(*pos) == Some(&'-') && p.get(*pos + 1).is_some_and(|&e| e != ']') {
            let hi = p[*pos + 1];
            if hi < c {
                return Err(GlobError("inverted range in character class"));
            }
            ranges.push((c, hi));
            *pos += 2;
        } else {
            ranges.push((c, c));
        }
    }
    if ranges.is_empty() {
        return Err(GlobError("empty character class"));
    }
    Ok(Token::Class { negated, ranges })
}

/// Parses alternatives after `{` up to and including `}`.
fn parse_alt(p: &[char], pos: &mut usize) -> Result<Token, GlobError> {
    let mut alts = Vec::new();
    loop {
        alts.push(parse_seq(p, pos, true)?);
        match p.get(*pos) {
            Some(',') => *pos += 1,
            Some('}') => {
                *pos += 1;
                return Ok(Token::Alt(alts));
            }
            _ => return Err(GlobError("unclosed group")),
        }
    }
}

/// Matches `seq` followed by the sequences in `rest` (innermost first)
/// against the whole of `text`.
fn matches(seq: &[Token], rest: &[&[Token]], text: &[char]) -> bool {
    let Some((first, tail)) = seq.split_first() else {
        return match rest.split_first() {
            Some((next, outer)) => matches(next, outer, text),
            None => text.is_empty(),
        };
    };
    match first {
        Token::Char(c) => text.first() == Some(c) && matches(tail, rest, &text[1..]),
        Token::Single => !text.is_empty() && matches(tail, rest, &text[1..]),
        Token::Class { negated, ranges } => text.first().is_some_and(|t| {
            let inside = ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&t));
            inside != *negated && matches(tail, rest, &text[1..])
        }),
        Token::Any => {
            if tail.is_empty() && rest.is_empty() {
                return true;
            }
            (0..=text.len()).any(|skip| matches(tail, rest, &text[skip..]))
        }
        Token::Alt(alts) => {
            let mut stack: Vec<&[Token]> = Vec::with_capacity(rest.len() + 1);
            stack.push(tail);
            stack.extend_from_slice(rest);
            alts.iter().any(|alt| matches(alt, &stack, text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).expect("compiles").is_match(text)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("chat:index", "chat:index"));
        assert!(!m("chat:index", "chat:indexx"));
        assert!(m("*", ""));
        assert!(m("*", "chat:a:b"));
        assert!(m("chat:*", "chat:"));
        assert!(m("chat:*", "chat:room"));
        assert!(!m("chat:*", "news:room"));
        assert!(m("**", "a:b"));
        assert!(m("*:*:x", "a:b:x"));
        assert!(m("c?at", "chat"));
        assert!(!m("c?at", "cat"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
    }

    #[test]
    fn classes() {
        assert!(m("room[0-9]", "room7"));
        assert!(!m("room[0-9]", "roomx"));
        assert!(m("room[!0-9]", "roomx"));
        assert!(!m("room[!0-9]", "room1"));
        assert!(m("[abc]x", "bx"));
        assert!(m("[a-]", "-"));
        assert!(m("[\\]]", "]"));
    }

    #[test]
    fn groups_and_escapes() {
        assert!(m("{chat,news}:*", "news:1"));
        assert!(!m("{chat,news}:*", "feed:1"));
        assert!(m("x{a,b{c,d}}y", "xbdy"));
        assert!(m("x{,a}y", "xy"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a,b}", "a,b}"));
    }

    #[test]
    fn invalid_patterns() {
        for p in ["[abc", "{a,b", "[]", "[!]", "a\\", "[z-a]"] {
            assert!(Glob::new(p).is_err(), "{p:?} should not compile");
        }
    }
}
