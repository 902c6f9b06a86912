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
pub(crate) struct GlobError(&'static str);

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

/// A compiled pattern: a Thompson NFA, so matching takes time linear in
/// the text times the pattern size whatever the wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    states: Vec<State>,
    start: usize,
}

/// One NFA state; `usize` fields are indices of following states.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Consumes this character.
    Char(char, usize),
    /// Consumes any one character.
    Single(usize),
    /// Consumes one character in (or, negated, outside) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
        next: usize,
    },
    /// Consumes any character and stays; also continues without consuming.
    Any(usize),
    /// Continues into every branch without consuming.
    Split(Vec<usize>),
    /// The whole pattern matched.
    Match,
}

impl Glob {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Self, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let tokens = parse_seq(&chars, &mut pos, false)?;
        let mut states = vec![State::Match];
        let start = compile_seq(&tokens, 0, &mut states);
        Ok(Self { states, start })
    }

    /// True when the whole of `text` matches.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let n = self.states.len();
        let mut current = vec![false; n];
        self.close(self.start, &mut current);
        for ch in text.chars() {
            let mut next = vec![false; n];
            let mut any = false;
            for (i, on) in current.iter().enumerate() {
                if !on {
                    continue;
                }
                let to = match &self.states[i] {
                    State::Char(c, to) if *c == ch => Some(*to),
                    State::Single(to) => Some(*to),
                    State::Class {
                        negated,
                        ranges,
                        next: to,
                    } => {
                        let inside = ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&&ch));
                        (inside != *negated).then_some(*to)
                    }
                    State::Any(_) => Some(i),
                    _ => None,
                };
                if let Some(to) = to {
                    self.close(to, &mut next);
                    any = true;
                }
            }
            if !any {
                return false;
            }
            current = next;
        }
        current
            .iter()
            .zip(&self.states)
            .any(|(on, st)| *on && *st == State::Match)
    }

    /// Adds `state` and everything reachable from it without consuming.
    fn close(&self, state: usize, set: &mut [bool]) {
        let mut stack = vec![state];
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut set[s], true) {
                continue;
            }
            match &self.states[s] {
                State::Any(to) => stack.push(*to),
                State::Split(branches) => stack.extend(branches.iter().copied()),
                _ => {}
            }
        }
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

/// Compiles `seq` so that it continues into state `next`; returns the
/// entry state.
fn compile_seq(seq: &[Token], next: usize, states: &mut Vec<State>) -> usize {
    let mut next = next;
    for token in seq.iter().rev() {
        let state = match token {
            Token::Char(c) => State::Char(*c, next),
            Token::Single => State::Single(next),
            Token::Class { negated, ranges } => State::Class {
                negated: *negated,
                ranges: ranges.clone(),
                next,
            },
            Token::Any => State::Any(next),
            Token::Alt(alts) => {
                State::Split(alts.iter().map(|a| compile_seq(a, next, states)).collect())
            }
        };
        states.push(state);
        next = states.len() - 1;
    }
    next
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
    fn many_wildcards_do_not_backtrack() {
        let text = "a".repeat(255);
        assert!(!m("*a*a*a*a*a*a*a*a*b", &text));
        assert!(m("*a*a*a*a*a*a*a*a*", &text));
        assert!(m("{*a,*b}{*a,*b}{*a,*b}*", &text));
    }

    #[test]
    fn invalid_patterns() {
        for p in ["[abc", "{a,b", "[]", "[!]", "a\\", "[z-a]"] {
            assert!(Glob::new(p).is_err(), "{p:?} should not compile");
        }
    }
}
