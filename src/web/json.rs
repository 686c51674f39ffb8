//! Small JSON helpers for the API: a strict reader for the flat request bodies the API takes
//! (one object of string/number/bool/null values) and writers for strings and times.
//! Per-request allocation is fine here (not the live path).

use crate::clock::Iso;
use core::fmt;

/// A value in a flat JSON object, as written (strings already unescaped).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    /// The number's text as written.
    Num(String),
    Bool(bool),
    Null,
    /// An array or object (not allowed in the API's bodies except as a wrong type).
    Nested,
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Num(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Nested => "an array or object",
        }
    }
}

/// A flat JSON object: its members in order, with their raw text (for config merging).
#[derive(Debug, Default)]
pub struct Object {
    pub members: Vec<(String, Value, String)>,
}

impl Object {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.members.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| v)
    }
}

/// Parses `body` as one JSON object whose values are scalars (nested values are kept as
/// [`Value::Nested`] so a caller can name the key with the wrong type). Duplicate keys are
/// refused. The error says what is wrong and where.
pub fn parse_object(body: &[u8]) -> Result<Object, String> {
    let text = core::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let mut p = P { s: text.as_bytes(), i: 0 };
    p.ws();
    if !p.eat(b'{') {
        return Err("body must be a JSON object".into());
    }
    let mut o = Object::default();
    p.ws();
    if p.eat(b'}') {
        return p.end(o);
    }
    loop {
        p.ws();
        let key = p.string()?;
        p.ws();
        if !p.eat(b':') {
            return Err(p.err("expected ':'"));
        }
        p.ws();
        let start = p.i;
        let v = p.value(0)?;
        let raw = text[start..p.i].to_string();
        if o.get(&key).is_some() {
            return Err(format!("duplicate key {key:?}"));
        }
        o.members.push((key, v, raw));
        p.ws();
        if p.eat(b',') {
            continue;
        }
        if p.eat(b'}') {
            return p.end(o);
        }
        return Err(p.err("expected ',' or '}'"));
    }
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn err(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.i)
    }
    fn end(mut self, o: Object) -> Result<Object, String> {
        self.ws();
        if self.i != self.s.len() {
            return Err(self.err("trailing characters after the object"));
        }
        Ok(o)
    }
    fn string(&mut self) -> Result<String, String> {
        if !self.eat(b'"') {
            return Err(self.err("expected a string"));
        }
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return Err(self.err("unterminated string")) };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err(self.err("unterminated string")) };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                // A surrogate pair: the low half must follow.
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(c).ok_or_else(|| self.err("lone surrogate in \\u escape"))?);
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                c if c < 0x20 => return Err(self.err("control character in string")),
                _ => {
                    // Copy one UTF-8 sequence (the input is valid UTF-8).
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                        end += 1;
                    }
                    out.push_str(core::str::from_utf8(&self.s[start..end]).unwrap_or(""));
                    self.i = end;
                }
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("bad \\u escape"))?;
        let hex = core::str::from_utf8(hex).map_err(|_| self.err("bad \\u escape"))?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("bad \\u escape"));
        }
        let n = u32::from_str_radix(hex, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(n)
    }

    fn value(&mut self, depth: u32) -> Result<Value, String> {
        if depth > 32 {
            return Err(self.err("nested too deeply"));
        }
        match self.s.get(self.i) {
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Value::Null)
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                self.eat(b'-');
                let digits = |p: &mut Self| {
                    let s = p.i;
                    while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                        p.i += 1;
                    }
                    p.i > s
                };
                let int_start = self.i;
                if !digits(self) || (self.i - int_start > 1 && self.s[int_start] == b'0') {
                    return Err(self.err("bad number"));
                }
                if self.eat(b'.') && !digits(self) {
                    return Err(self.err("bad number"));
                }
                if self.eat(b'e') || self.eat(b'E') {
                    let _ = self.eat(b'+') || self.eat(b'-');
                    if !digits(self) {
                        return Err(self.err("bad number"));
                    }
                }
                let t = core::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
                Ok(Value::Num(t.to_string()))
            }
            Some(b'[') | Some(b'{') => {
                let close = if self.s[self.i] == b'[' { b']' } else { b'}' };
                let is_obj = close == b'}';
                self.i += 1;
                self.ws();
                if self.eat(close) {
                    return Ok(Value::Nested);
                }
                loop {
                    self.ws();
                    if is_obj {
                        self.string()?;
                        self.ws();
                        if !self.eat(b':') {
                            return Err(self.err("expected ':'"));
                        }
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(close) {
                        return Ok(Value::Nested);
                    }
                    return Err(self.err("expected ',' or a closing bracket"));
                }
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

/// A JSON string literal (the one writer every JSON body shares).
pub use crate::json_str::JsonStr as Str;

/// An optional string: `"..."` or `null`.
pub struct OptStr<'a>(pub Option<&'a str>);

impl fmt::Display for OptStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => Str(s).fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// A UTC time (ns) as an ISO 8601 string literal.
pub struct Time(pub i64);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", Iso(self.0))
    }
}

/// Unix milliseconds of a UTC time in ns (floor).
pub fn ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_objects_parse_and_junk_is_refused() {
        let o = parse_object(br#" {"a": "x\"y", "b": -1.5e3, "c": true, "d": null, "e": [1, {"f": 2}]} "#).unwrap();
        assert_eq!(o.get("a"), Some(&Value::Str("x\"y".into())));
        assert_eq!(o.get("b"), Some(&Value::Num("-1.5e3".into())));
        assert_eq!(o.get("c"), Some(&Value::Bool(true)));
        assert_eq!(o.get("d"), Some(&Value::Null));
        assert_eq!(o.get("e"), Some(&Value::Nested));
        assert_eq!(o.members[1].2, "-1.5e3");
        let o = parse_object(br#"{"\ud83d\ude00": "\u00e9"}"#).unwrap();
        assert_eq!(o.members[0].0, "\u{1f600}");
        assert_eq!(o.get("\u{1f600}"), Some(&Value::Str("\u{e9}".into())));
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":01x}",
            b"{\"a\":\xff}",
            b"{\"a\":-}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":\"\\ud800\\u0041\"}",
            b"{\"a\":\"\\u+041\"}",
        ] {
            assert!(parse_object(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse_object(deep.as_bytes()).is_err());
    }
}
