//! Lazy walks over JSON text held in a byte slice: the elements of an
//! array one by one, and one member of an object, so a batch of a million
//! commands is walked element by element instead of being decoded into a
//! `Vec` first. Each value is skipped with one `serde_json` scan (the
//! stream deserializer's `byte_offset` gives its end), which neither
//! allocates nor checks more than a decoder that ignores the value would.

use std::ops::Range;

use serde::de::IgnoredAny;

/// The input is not one well-formed JSON array; `offset` is where the
/// problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) offset: usize,
}

/// Where the iterator is in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After `[`: an element or `]` comes next.
    First,
    /// After an element: `,` or `]` comes next.
    Rest,
    /// Finished (or failed); yields nothing more.
    Done,
}

/// The elements of the JSON array in `src`, in order, each as the exact
/// slice of its text (surrounding whitespace excluded). Yields one `Err`
/// and stops when the input is not a well-formed array, including
/// anything but whitespace after the closing `]`.
#[derive(Debug, Clone)]
pub(crate) struct JsonArray<'a> {
    src: &'a [u8],
    pos: usize,
    state: State,
}

impl<'a> JsonArray<'a> {
    /// Starts at the `[` that opens `src` (after whitespace).
    pub(crate) fn new(src: &'a [u8]) -> Result<Self, Malformed> {
        let mut it = JsonArray {
            src,
            pos: 0,
            state: State::First,
        };
        it.skip_whitespace();
        if it.peek() != Some(b'[') {
            return Err(Malformed { offset: it.pos });
        }
        it.pos += 1;
        Ok(it)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        self.pos = skip_whitespace(self.src, self.pos);
    }

    fn fail(&mut self) -> Option<Result<&'a [u8], Malformed>> {
        self.state = State::Done;
        Some(Err(Malformed { offset: self.pos }))
    }

    /// After `]`: only whitespace may follow.
    fn close(&mut self) -> Option<Result<&'a [u8], Malformed>> {
        self.pos += 1;
        self.skip_whitespace();
        if self.pos != self.src.len() {
            return self.fail();
        }
        self.state = State::Done;
        None
    }

    fn element(&mut self) -> Option<Result<&'a [u8], Malformed>> {
        self.skip_whitespace();
        let Some(end) = value_end(self.src, self.pos) else {
            return self.fail();
        };
        let start = self.pos;
        self.pos = end;
        self.state = State::Rest;
        Some(Ok(&self.src[start..end]))
    }
}

impl<'a> Iterator for JsonArray<'a> {
    type Item = Result<&'a [u8], Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        self.skip_whitespace();
        match (self.state, self.peek()) {
            (_, Some(b']')) => self.close(),
            (State::First, Some(_)) => self.element(),
            (State::Rest, Some(b',')) => {
                self.pos += 1;
                self.element()
            }
            _ => self.fail(),
        }
    }
}

/// The index after JSON whitespace from `pos`.
fn skip_whitespace(src: &[u8], mut pos: usize) -> usize {
    while src
        .get(pos)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        pos += 1;
    }
    pos
}

/// The end of the one JSON value starting at `pos`.
fn value_end(src: &[u8], pos: usize) -> Option<usize> {
    let mut values =
        serde_json::Deserializer::from_slice(src.get(pos..)?).into_iter::<IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => Some(pos + values.byte_offset()),
        _ => None,
    }
}

/// Where the value of member `name` of the JSON object in `src` is, if
/// the object has one. Meant for an object already decoded once (so known
/// to be well formed, without duplicate names): the first member named
/// `name` (after unescaping) is taken; malformed input gives `None`.
pub(crate) fn member(src: &[u8], name: &str) -> Option<Range<usize>> {
    let mut pos = skip_whitespace(src, 0);
    if src.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_whitespace(src, pos + 1);
    if src.get(pos) == Some(&b'}') {
        return None;
    }
    loop {
        let mut keys = serde_json::Deserializer::from_slice(src.get(pos..)?).into_iter::<String>();
        let key = keys.next()?.ok()?;
        pos = skip_whitespace(src, pos + keys.byte_offset());
        if src.get(pos) != Some(&b':') {
            return None;
        }
        let start = skip_whitespace(src, pos + 1);
        let end = value_end(src, start)?;
        if key == name {
            return Some(start..end);
        }
        pos = skip_whitespace(src, end);
        match src.get(pos) {
            Some(b',') => pos = skip_whitespace(src, pos + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(src: &str) -> Result<Vec<&str>, Malformed> {
        JsonArray::new(src.as_bytes())?
            .map(|r| r.map(|b| std::str::from_utf8(b).expect("utf-8")))
            .collect()
    }

    #[test]
    fn empty_arrays() {
        assert_eq!(elements("[]"), Ok(vec![]));
        assert_eq!(elements(" \n[ \t ] \r\n"), Ok(vec![]));
    }

    #[test]
    fn elements_are_exact_slices() {
        assert_eq!(
            elements(r#"[{}, null ,1,"a",[],{"x":[1,2]}]"#),
            Ok(vec!["{}", "null", "1", "\"a\"", "[]", r#"{"x":[1,2]}"#])
        );
    }

    #[test]
    fn brackets_and_commas_inside_strings_and_nesting() {
        assert_eq!(
            elements(r#"[ "],[" , [[1,[2]],"]"] , {"k":"\"],"} ]"#),
            Ok(vec![r#""],[""#, r#"[[1,[2]],"]"]"#, r#"{"k":"\"],"}"#])
        );
    }

    #[test]
    fn not_an_array() {
        assert_eq!(elements("{}").map(|_| ()), Err(Malformed { offset: 0 }));
        assert_eq!(elements("  1").map(|_| ()), Err(Malformed { offset: 2 }));
        assert_eq!(elements("").map(|_| ()), Err(Malformed { offset: 0 }));
    }

    #[test]
    fn malformed_arrays_fail_once_and_stop() {
        for bad in [
            "[", "[1", "[1,", "[1,]", "[,1]", "[1 2]", "[1]x", "[] []", "[}", "[1}", "[nul]",
        ] {
            let mut it = JsonArray::new(bad.as_bytes()).expect("starts as an array");
            let results: Vec<_> = it.by_ref().collect();
            assert!(
                results.last().is_some_and(|r| r.is_err()),
                "{bad:?}: {results:?}"
            );
            assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1, "{bad:?}");
            assert_eq!(it.next(), None, "{bad:?}");
        }
    }

    fn member_text<'a>(src: &'a str, name: &str) -> Option<&'a str> {
        member(src.as_bytes(), name).map(|r| &src[r])
    }

    #[test]
    fn members_are_found_by_unescaped_name() {
        let obj =
            r#" { "parallel" : true , "x": {"commands": 1}, "comm\u0061nds" : [ {}, null ] } "#;
        assert_eq!(member_text(obj, "commands"), Some("[ {}, null ]"));
        assert_eq!(member_text(obj, "parallel"), Some("true"));
        assert_eq!(member_text(obj, "x"), Some(r#"{"commands": 1}"#));
        assert_eq!(member_text(obj, "missing"), None);
        assert_eq!(member_text("{}", "commands"), None);
        assert_eq!(member_text("null", "commands"), None);
        assert_eq!(
            member_text(r#"{"commands":null}"#, "commands"),
            Some("null")
        );
        assert_eq!(member_text(r#"{"a" 1}"#, "a"), None);
    }

    #[test]
    fn values_are_skipped_without_checking_utf8() {
        let src = b"[\"\xff\", {\"k\": \"\xfe\"}]";
        let elements: Vec<_> = JsonArray::new(src).expect("array").collect();
        assert_eq!(elements.len(), 2);
        assert!(elements.iter().all(Result::is_ok));
        let obj = b"{\"x\": \"\xff\", \"commands\": []}";
        assert_eq!(member(obj, "commands"), Some(23..25));
    }

    #[test]
    fn trailing_garbage_is_reported_after_the_elements() {
        let results: Vec<_> = JsonArray::new(b"[1, 2] ,").expect("array").collect();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0], Ok(&b"1"[..]));
        assert_eq!(results[1], Ok(&b"2"[..]));
        assert_eq!(results[2], Err(Malformed { offset: 7 }));
    }
}
