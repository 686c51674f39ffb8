//! The strict JSON syntax check that runs before serde-json-core, and JSON string unescaping.
//!
//! serde-json-core reports neither byte positions nor what it was looking at, so [`scan`]
//! checks the whole text first: it gives syntax errors a byte offset, and it hands back the raw
//! text of each top-level value so that type errors can quote what was found.

/// Maximum nesting of arrays/objects the syntax check follows (no key takes either; this only
/// bounds the work spent on a malformed file).
const MAX_DEPTH: u32 = 32;

/// The raw text of each top-level member's value, in file order. Enough members to reach the
/// first error: with N keys, member N + 1 is a duplicate or unknown key, which is refused
/// before its value is looked at.
pub(super) type Values<'a> = heapless::Vec<&'a [u8], { super::keys::Key::ALL.len() + 1 }>;

#[derive(Debug)]
pub(super) enum ScanError {
    NotObject,
    /// `at` is a byte offset in the scanned text.
    Syntax {
        at: usize,
        expected: &'static str,
    },
}

/// Check that `body` is UTF-8 text holding exactly one JSON object (surrounded by optional
/// whitespace), and return the raw text of its members' values.
pub(super) fn scan(body: &[u8]) -> Result<Values<'_>, ScanError> {
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    // A file that does not even start like an object says so, whatever its encoding.
    if s.peek() != Some(b'{') {
        return Err(ScanError::NotObject);
    }
    // UTF-8 first, so that messages can quote the text.
    if let Err(e) = core::str::from_utf8(body) {
        return Err(ScanError::Syntax {
            at: e.valid_up_to(),
            expected: "valid UTF-8 text",
        });
    }
    let mut values = Values::new();
    s.object(1, Some(&mut values))?;
    s.ws();
    if s.i != s.b.len() {
        return s.err("the end of the file after the closing '}'");
    }
    Ok(values)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn err<T>(&self, expected: &'static str) -> Result<T, ScanError> {
        Err(ScanError::Syntax {
            at: self.i,
            expected,
        })
    }

    fn value(&mut self, depth: u32) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return self.err("less deeply nested arrays/objects");
        }
        match self.peek() {
            Some(b'{') => self.object(depth, None),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.err("a value (string, number, true, false, null, object or array)"),
        }
    }

    /// An object; for the top-level one, `values` collects the raw text of its values.
    fn object(&mut self, depth: u32, mut values: Option<&mut Values<'a>>) -> Result<(), ScanError> {
        self.i += 1; // '{'
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            match self.peek() {
                Some(b'"') => self.string()?,
                Some(b'}') => return self.err("a key after ',' (no trailing commas in JSON)"),
                _ => return self.err("a key in double quotes"),
            }
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("':' after the key");
            }
            self.i += 1;
            self.ws();
            let start = self.i;
            self.value(depth + 1)?;
            if let Some(v) = values.as_deref_mut() {
                // Beyond the capacity the parse fails on a key before it needs the value.
                let _ = v.push(&self.b[start..self.i]);
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: u32) -> Result<(), ScanError> {
        self.i += 1; // '['
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() == Some(b']') {
                return self.err("a value after ',' (no trailing commas in JSON)");
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' or ']'"),
            }
        }
    }

    fn string(&mut self) -> Result<(), ScanError> {
        self.i += 1; // '"'
        loop {
            match self.peek() {
                None => return self.err("'\"' to close the string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return self.err("4 hex digits after \\u");
                                }
                                self.i += 1;
                            }
                        }
                        _ => {
                            return self
                                .err("an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
                        }
                    }
                }
                Some(0..=0x1f) => {
                    return self
                        .err("\\n, \\t or \\u00XX instead of a raw control character in a string");
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> Result<(), ScanError> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return self.err("a digit");
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            _ => self.digits()?,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ScanError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("a value (string, number, true, false, null, object or array)")
        }
    }
}

#[derive(Debug, PartialEq)]
pub(super) enum Unescape {
    TooLong,
    BadEscape,
}

/// Unescape the inside of a JSON string into `out` (all JSON escapes, including surrogate
/// pairs). On `TooLong`, `out` holds what fit.
pub(super) fn unescape<const N: usize>(
    raw: &str,
    out: &mut heapless::String<N>,
) -> Result<(), Unescape> {
    fn hex4(chars: &mut core::str::Chars<'_>) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    }
    out.clear();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let c = if c != '\\' {
            c
        } else {
            match chars.next().ok_or(Unescape::BadEscape)? {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    let hi = hex4(&mut chars).ok_or(Unescape::BadEscape)?;
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        // A high surrogate must be followed by \u and a low surrogate.
                        if chars.next() != Some('\\') || chars.next() != Some('u') {
                            return Err(Unescape::BadEscape);
                        }
                        let lo = hex4(&mut chars).ok_or(Unescape::BadEscape)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err(Unescape::BadEscape);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    char::from_u32(code).ok_or(Unescape::BadEscape)?
                }
                _ => return Err(Unescape::BadEscape),
            }
        };
        out.push(c).map_err(|_| Unescape::TooLong)?;
    }
    Ok(())
}
