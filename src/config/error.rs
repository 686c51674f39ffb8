//! Why a configuration was refused: [`ConfigError`] and its [`ConfigErrorKind`], and the
//! constructors that write each message (naming the key and what it allows).

use core::fmt::{self, Write as _};
use std::io;
use std::path::Path;

use super::keys::{Expected, Key, Ty, closest_key};

/// What kind of problem a [`ConfigError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read (`load`).
    Io(io::ErrorKind),
    /// The file is larger than [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES).
    TooLarge,
    /// Not valid JSON (see [`ConfigError::offset`]).
    Syntax,
    /// Valid JSON but not an object.
    NotObject,
    UnknownKey,
    DuplicateKey,
    /// The value has the wrong JSON type (e.g. a string for a number, 1.5 for an integer).
    WrongType,
    /// A number outside the key's range.
    OutOfRange,
    /// A string that is too long or not acceptable (e.g. `listen` not an address).
    InvalidValue,
}

/// Why a configuration was refused. `Display` gives a complete one-line message that names
/// the key and what it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    key: Option<&'static str>,
    offset: Option<usize>,
    msg: String,
}

impl ConfigError {
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The key the error is about, if it is about one known key.
    pub fn key(&self) -> Option<&'static str> {
        self.key
    }

    /// For [`ConfigErrorKind::Syntax`]: the byte offset in the file where parsing stopped.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// True if `load` failed because the file does not exist (callers may then use defaults).
    pub fn is_not_found(&self) -> bool {
        self.kind == ConfigErrorKind::Io(io::ErrorKind::NotFound)
    }

    pub(super) fn new(
        kind: ConfigErrorKind,
        key: Option<Key>,
        msg: fmt::Arguments<'_>,
    ) -> ConfigError {
        ConfigError {
            kind,
            key: key.map(Key::name),
            offset: None,
            msg: msg.to_string(),
        }
    }

    /// Prefix the message with the file it came from.
    pub(super) fn in_file(mut self, path: &Path) -> ConfigError {
        self.msg = format!("{}: {}", path.display(), self.msg);
        self
    }

    /// Invalid JSON at byte `at` of `file`; the message gives the line and column too.
    pub(super) fn syntax(file: &[u8], at: usize, expected: &dyn fmt::Display) -> ConfigError {
        let before = file.get(..at).unwrap_or(file);
        let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        // Count characters, not bytes (skip UTF-8 continuation bytes).
        let column = 1 + before[line_start..]
            .iter()
            .filter(|&&c| c & 0xC0 != 0x80)
            .count();
        let what = if at >= file.len() {
            "unexpected end of file, expected "
        } else {
            "expected "
        };
        let mut e = ConfigError::new(
            ConfigErrorKind::Syntax,
            None,
            format_args!(
                "config: invalid JSON at byte {at} (line {line}, column {column}): \
                 {what}{expected}"
            ),
        );
        e.offset = Some(at);
        e
    }

    pub(super) fn not_object() -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::NotObject,
            None,
            format_args!("config: not a JSON object"),
        )
    }

    /// `name` is the key as far as it could be unescaped; `truncated` if it was cut short.
    pub(super) fn unknown_key(name: &str, truncated: bool) -> ConfigError {
        let mut msg = String::new();
        let _ = write!(msg, "unknown config key {name:?}");
        if truncated {
            msg.insert(msg.len() - 1, '…');
        }
        match closest_key(name).filter(|_| !truncated) {
            Some(k) => {
                let _ = write!(msg, " (did you mean \"{}\"?)", k.name());
            }
            None => {
                msg.push_str(" (known keys:");
                for (i, k) in Key::ALL.iter().enumerate() {
                    msg.push_str(if i == 0 { " " } else { ", " });
                    msg.push_str(k.name());
                }
                msg.push(')');
            }
        }
        ConfigError::new(ConfigErrorKind::UnknownKey, None, format_args!("{msg}"))
    }

    pub(super) fn duplicate_key(key: Key) -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::DuplicateKey,
            Some(key),
            format_args!("duplicate config key \"{}\"", key.name()),
        )
    }

    pub(super) fn wrong_type(key: Key, found: &dyn fmt::Display) -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::WrongType,
            Some(key),
            format_args!(
                "config key \"{}\": expected {}, found {found}",
                key.name(),
                Expected(key)
            ),
        )
    }

    pub(super) fn out_of_range(key: Key, shown: &dyn fmt::Display) -> ConfigError {
        let range = match key.ty() {
            Ty::Uint { min, max } => format!("{min}..={max}"),
            Ty::Float { min, max } => format!("{min}..={max}"),
            _ => String::new(),
        };
        ConfigError::new(
            ConfigErrorKind::OutOfRange,
            Some(key),
            format_args!(
                "config key \"{}\": {shown} is out of range (allowed {range})",
                key.name()
            ),
        )
    }

    pub(super) fn too_long(key: Key) -> ConfigError {
        let max = match key.ty() {
            Ty::Str { max } => max,
            _ => 0,
        };
        ConfigError::new(
            ConfigErrorKind::InvalidValue,
            Some(key),
            format_args!(
                "config key \"{}\": string is too long (allowed at most {max} bytes)",
                key.name()
            ),
        )
    }

    /// A string value with a `\u` escape that is half of a UTF-16 surrogate pair.
    pub(super) fn lone_surrogate(key: Key) -> ConfigError {
        ConfigError::new(
            ConfigErrorKind::InvalidValue,
            Some(key),
            format_args!(
                "config key \"{}\": invalid \\u escape (a lone UTF-16 surrogate)",
                key.name()
            ),
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ConfigError {}
