//! Writing a [`Config`] as JSON: one key per line in the documented order, strings escaped as
//! JSON requires.

use core::fmt;

use super::Config;
use super::keys::{Key, Val};

impl Config {
    /// The body of [`Config::to_json`], into any writer (the tests use an unbounded one).
    pub(super) fn write_json(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        self.write_json_as(w, false)
    }

    /// `hide`: `rtsp://` passwords in `cameras` written as `********` (what the API shows).
    pub(super) fn write_json_as(&self, w: &mut dyn fmt::Write, hide: bool) -> fmt::Result {
        w.write_str("{\n")?;
        for (i, key) in Key::ALL.into_iter().enumerate() {
            write!(w, "  \"{}\": ", key.name())?;
            match self.get(key) {
                // The first camera's RTSP URL: its password hidden too.
                Val::Str(s) if hide && key == Key::CameraDevice => write_json_str(w, &super::cameras::redact(s))?,
                Val::Str(s) => write_json_str(w, s)?,
                Val::Uint(v) => write!(w, "{v}")?,
                Val::Float(v) if !v.is_finite() => w.write_str("null")?,
                // Shortest text that reads back to the same f64; exponent form for extreme
                // values so the length stays bounded.
                Val::Float(v) if v == 0.0 || (1e-5..1e15).contains(&v.abs()) => write!(w, "{v}")?,
                Val::Float(v) => write!(w, "{v:e}")?,
                Val::Bool(v) => write!(w, "{v}")?,
                Val::Cameras(c) => super::cameras::write_json(c, hide, w)?,
            }
            w.write_str(if i + 1 < Key::ALL.len() { ",\n" } else { "\n" })?;
        }
        w.write_str("}\n")
    }
}

/// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
pub(super) fn write_json_str(w: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => None,
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        match esc {
            Some(e) => w.write_str(e)?,
            None => write!(w, "\\u{:04x}", c as u32)?,
        }
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])?;
    w.write_char('"')
}
