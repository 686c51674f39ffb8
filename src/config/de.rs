//! The walk over a scanned config object with serde-json-core: a hand-written map visitor that
//! reads each key, checks its value against the key table and stores it in a [`Config`].
//!
//! serde errors carry no detail, so the visitor keeps a context (which member and key it is
//! working on, and the complete error when it can tell exactly what is wrong) that [`read`]
//! turns into the [`ConfigError`] afterwards.

use core::fmt;

use serde::de::{self, MapAccess, Visitor};

use super::keys::{Key, Ty, Val, check};
use super::scan::{Unescape, unescape};
use super::{Config, ConfigError, ConfigErrorKind};

/// Build a `Config` from `body`, which [`scan`](super::scan::scan) accepted and whose members'
/// raw values are `values`. Keys not in the file keep their defaults; the result is not yet
/// validated as a whole.
pub(super) fn read(body: &[u8], values: &[&[u8]]) -> Result<Config, ConfigError> {
    let mut ctx = Ctx {
        values,
        index: 0,
        key: None,
        problem: None,
    };
    let mut de = serde_json_core::de::Deserializer::new(body, None);
    let result = de::Deserializer::deserialize_map(&mut de, ConfigVisitor { ctx: &mut ctx })
        .and_then(|cfg| de.end().map(|_| cfg));
    result.map_err(|e| {
        // Without a problem recorded: not expected after the syntax check, but never trust that.
        ctx.problem.take().unwrap_or_else(|| match ctx.key {
            Some(key) => {
                ConfigError::wrong_type(key, &Found(ctx.raw_value(ctx.index.saturating_sub(1))))
            }
            None => ConfigError::new(
                ConfigErrorKind::Syntax,
                None,
                format_args!("config: invalid JSON: {e}"),
            ),
        })
    })
}

/// What the visitor knows when something fails: read by [`read`] afterwards.
struct Ctx<'b> {
    /// The raw text of each member's value, from the syntax check.
    values: &'b [&'b [u8]],
    /// Index of the next member to process.
    index: usize,
    /// The key whose value is being read, if any.
    key: Option<Key>,
    /// The complete error, when the visitor could tell exactly what is wrong.
    problem: Option<ConfigError>,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&mut self, e: ConfigError) -> E {
        self.problem = Some(e);
        E::custom("config error (see context)")
    }

    fn raw_value(&self, index: usize) -> &[u8] {
        self.values.get(index).copied().unwrap_or(&[])
    }
}

/// A raw JSON value as it appears in messages: text up to 40 bytes, or "an object"/"an array".
pub(super) struct Found<'a>(pub(super) &'a [u8]);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.first() {
            None => f.write_str("something else"),
            Some(b'{') => f.write_str("an object"),
            Some(b'[') => f.write_str("an array"),
            Some(_) => {
                // The body was checked to be UTF-8, so this cannot fail; be safe anyway.
                let s = core::str::from_utf8(self.0).unwrap_or("(invalid UTF-8)");
                if s.len() <= 40 {
                    f.write_str(s)
                } else {
                    let mut cut = 40;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    write!(f, "{}…", &s[..cut])
                }
            }
        }
    }
}

struct ConfigVisitor<'c, 'b> {
    ctx: &'c mut Ctx<'b>,
}

impl<'de> Visitor<'de> for ConfigVisitor<'_, '_> {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let ctx = self.ctx;
        let mut cfg = Config::default();
        let mut seen = 0u32;
        // Unescaped string values land here (the longest string key, camera_device, holds 192
        // bytes: an RTSP camera's URL).
        let mut text: heapless::String<192> = heapless::String::new();
        loop {
            ctx.key = None;
            // No unescape buffer is given to serde-json-core, so strings come back raw
            // (escapes intact) and borrowed from the input.
            let Some(raw_key) = map.next_key::<&'de str>()? else {
                break;
            };
            let index = ctx.index;
            ctx.index += 1;

            let mut name: heapless::String<64> = heapless::String::new();
            let (key, truncated) = match unescape(raw_key, &mut name) {
                Ok(()) => (Key::from_name(&name), false),
                Err(Unescape::TooLong) => (None, true),
                Err(Unescape::BadEscape) => (None, false),
            };
            let Some(key) = key else {
                return Err(ctx.fail(ConfigError::unknown_key(&name, truncated)));
            };
            if seen & key.bit() != 0 {
                return Err(ctx.fail(ConfigError::duplicate_key(key)));
            }
            seen |= key.bit();
            ctx.key = Some(key);

            // The syntax check has made sure `raw` is one complete JSON value, so its first
            // byte tells its type. Refuse wrong types before serde-json-core sees them: it
            // would read `1.5` as 1 for an integer key and only fail at the next key.
            let raw = ctx.raw_value(index);
            let first = raw.first().copied().unwrap_or(0);
            let wrong_type = || ConfigError::wrong_type(key, &Found(raw));
            let cams;
            let val = match key.ty() {
                Ty::Cameras => {
                    if first != b'[' {
                        return Err(ctx.fail(wrong_type()));
                    }
                    cams = match super::cameras::parse(raw) {
                        Ok(c) => c,
                        Err(e) => return Err(ctx.fail(e)),
                    };
                    map.next_value::<de::IgnoredAny>()?;
                    Val::Cameras(&cams)
                }
                Ty::Bool => {
                    if raw != b"true" && raw != b"false" {
                        return Err(ctx.fail(wrong_type()));
                    }
                    Val::Bool(map.next_value::<bool>()?)
                }
                Ty::Uint { .. } => {
                    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
                        return Err(ctx.fail(wrong_type()));
                    }
                    match map.next_value::<u64>() {
                        Ok(v) => Val::Uint(v),
                        // All digits, so the only possible failure is overflow.
                        Err(_) => {
                            return Err(ctx.fail(ConfigError::out_of_range(key, &Found(raw))));
                        }
                    }
                }
                Ty::Float { .. } => {
                    if !(first == b'-' || first.is_ascii_digit()) {
                        return Err(ctx.fail(wrong_type()));
                    }
                    Val::Float(map.next_value::<f64>()?)
                }
                Ty::Str { .. } => {
                    if first != b'"' {
                        return Err(ctx.fail(wrong_type()));
                    }
                    let raw_str = map.next_value::<&'de str>()?;
                    match unescape(raw_str, &mut text) {
                        Ok(()) => Val::Str(&text),
                        Err(Unescape::TooLong) => return Err(ctx.fail(ConfigError::too_long(key))),
                        Err(Unescape::BadEscape) => {
                            return Err(ctx.fail(ConfigError::lone_surrogate(key)));
                        }
                    }
                }
            };
            if let Err(e) = check(key, val, &Found(raw)).and_then(|()| cfg.set(key, val)) {
                return Err(ctx.fail(e));
            }
        }
        ctx.key = None;
        Ok(cfg)
    }
}
