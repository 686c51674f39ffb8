//! `JsonStr`: a string written as a JSON string literal, without allocating (Display). Shared
//! by every hand-written JSON writer (the status and API bodies, the CLI's `--json` output).

use core::fmt::{self, Write as _};

/// A JSON string literal.
pub struct JsonStr<'a>(pub &'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for ch in self.0.chars() {
            match ch {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::JsonStr;

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(JsonStr("a\"b\\c\n\u{7f}é").to_string(), "\"a\\\"b\\\\c\\u000a\\u007fé\"");
    }
}
