//! A `log` backend that writes one line per event to stderr.
//!
//! Line format (UTC time with milliseconds, level padded to 5, target, message):
//!
//! ```text
//! 2026-11-22T00:30:15.250Z INFO  blackbox::store: message
//! ```
//!
//! Each line is formatted into a fixed stack buffer ([`LINE_MAX`] bytes; longer lines are cut
//! at a character boundary and end in `…`) and emitted with one `write(2)` to fd 2, so lines
//! from different threads never interleave (a write of at most `PIPE_BUF` bytes to a pipe is
//! atomic) and logging never allocates. Line breaks inside a message are written as `\n` / `\r`
//! so that one event stays one line. Write errors are ignored.

use core::fmt::{self, Write as _};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::clock;

/// Maximum length of one log line in bytes, including the final newline.
pub const LINE_MAX: usize = 1024;

/// Environment variable that overrides the level given to [`init`]:
/// `off`, `error`, `warn`, `info`, `debug` or `trace` (case-insensitive).
pub const ENV_VAR: &str = "BLACKBOX_LOG";

const ELLIPSIS: &str = "…";

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

/// Install the stderr logger with `level`, or with the level named by the `BLACKBOX_LOG`
/// environment variable if that is set and valid. Calling it again only changes the level
/// (and never panics); if another logger was installed first, that one stays.
pub fn init(level: LevelFilter) {
    let env = std::env::var(ENV_VAR).ok();
    let (level, bad_env) = match env.as_deref().map(parse_level) {
        Some(Some(l)) => (l, None),
        Some(None) => (level, env.as_deref()),
        None => (level, None),
    };
    // Err means a logger is already installed (ours from an earlier call, or someone else's).
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    if let Some(v) = bad_env {
        log::warn!(
            "{ENV_VAR}={v:?} is not one of off|error|warn|info|debug|trace; using level {level}"
        );
    }
}

/// Parse a level name (case-insensitive, surrounding whitespace ignored).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    let s = s.trim();
    [
        ("off", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warn", LevelFilter::Warn),
        ("warning", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
    ]
    .into_iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(s))
    .map(|(_, l)| l)
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = LineBuf::new();
        format_line(
            &mut line,
            clock::now_utc_ns(),
            record.level(),
            record.target(),
            record.args(),
        );
        write_stderr(line.finish());
    }

    fn flush(&self) {}
}

/// Format one complete line (with the trailing newline) into `out`.
fn format_line(
    out: &mut LineBuf,
    utc_ns: i64,
    level: Level,
    target: &str,
    args: &fmt::Arguments<'_>,
) {
    // LineBuf never returns an error, so the results can be ignored.
    let _ = write!(
        out,
        "{} {:<5} {}: ",
        clock::Iso(utc_ns),
        level.as_str(),
        target
    );
    out.escape_newlines = true;
    let _ = out.write_fmt(*args);
}

/// Write all of `bytes` to fd 2, retrying on EINTR and short writes; give up on other errors.
fn write_stderr(mut bytes: &[u8]) {
    let fd = rustix::stdio::stderr();
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return,
            Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

/// A fixed-size line buffer implementing `fmt::Write` that silently truncates (at a UTF-8
/// character boundary) and always leaves room for `…\n`.
struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
    truncated: bool,
    escape_newlines: bool,
}

impl LineBuf {
    /// Bytes usable for text: the rest is reserved for the ellipsis and the newline.
    const TEXT_MAX: usize = LINE_MAX - ELLIPSIS.len() - 1;

    fn new() -> Self {
        LineBuf {
            buf: [0; LINE_MAX],
            len: 0,
            truncated: false,
            escape_newlines: false,
        }
    }

    /// Append `s`; if it does not fit, append as much of it as fits (nothing if `whole`) and
    /// mark the line truncated. Returns whether all of `s` was appended.
    fn push(&mut self, s: &str, whole: bool) -> bool {
        if self.truncated {
            return false;
        }
        let room = Self::TEXT_MAX - self.len;
        if s.len() <= room {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            true
        } else {
            let mut cut = if whole { 0 } else { room };
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf[self.len..self.len + cut].copy_from_slice(&s.as_bytes()[..cut]);
            self.len += cut;
            self.truncated = true;
            false
        }
    }

    /// The finished line: the text, `…` if it was cut, and `\n`.
    fn finish(&mut self) -> &[u8] {
        if self.truncated {
            self.buf[self.len..self.len + ELLIPSIS.len()].copy_from_slice(ELLIPSIS.as_bytes());
            self.len += ELLIPSIS.len();
        }
        self.buf[self.len] = b'\n';
        &self.buf[..self.len + 1]
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !self.escape_newlines {
            self.push(s, false);
            return Ok(());
        }
        let mut rest = s;
        while let Some(pos) = rest.find(['\n', '\r']) {
            let esc = if rest.as_bytes()[pos] == b'\n' {
                "\\n"
            } else {
                "\\r"
            };
            if !self.push(&rest[..pos], false) || !self.push(esc, true) {
                return Ok(());
            }
            rest = &rest[pos + 1..];
        }
        self.push(rest, false);
        // Never report an error: a Display impl that unwraps write results must not panic
        // because a log line was too long.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, target: &str, args: fmt::Arguments<'_>) -> String {
        let mut b = LineBuf::new();
        format_line(&mut b, 1_795_307_415_250_000_000, level, target, &args);
        String::from_utf8(b.finish().to_vec()).unwrap()
    }

    #[test]
    fn line_format() {
        assert_eq!(
            line(
                Level::Info,
                "blackbox::store",
                format_args!("opened {} segments", 3)
            ),
            "2026-11-22T00:30:15.250Z INFO  blackbox::store: opened 3 segments\n"
        );
        assert_eq!(
            line(Level::Error, "x", format_args!("boom")),
            "2026-11-22T00:30:15.250Z ERROR x: boom\n"
        );
        assert_eq!(
            line(Level::Warn, "x", format_args!("a\nb\r\nc")),
            "2026-11-22T00:30:15.250Z WARN  x: a\\nb\\r\\nc\n"
        );
    }

    #[test]
    fn long_lines_are_truncated_at_char_boundary() {
        let long = "é".repeat(2000);
        let l = line(Level::Debug, "t", format_args!("{long}"));
        assert!(l.len() <= LINE_MAX, "{}", l.len());
        assert!(l.ends_with("…\n"));
        assert!(l.starts_with("2026-11-22T00:30:15.250Z DEBUG t: éé"));
        // Exactly full: no ellipsis.
        let prefix = "2026-11-22T00:30:15.250Z TRACE t: ".len();
        let fits = "a".repeat(LineBuf::TEXT_MAX - prefix);
        let l = line(Level::Trace, "t", format_args!("{fits}"));
        assert!(l.ends_with("a\n"));
        let l = line(Level::Trace, "t", format_args!("{fits}b"));
        assert!(l.ends_with("a…\n"));
        assert_eq!(l.len(), LINE_MAX);
        // Escapes that do not fit are cut, not split.
        let l = line(Level::Trace, "t", format_args!("{}\n\n\n", &fits[1..]));
        assert!(l.ends_with("a…\n"), "{l:?}");
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG"), Some(LevelFilter::Debug));
        assert_eq!(parse_level(" trace "), Some(LevelFilter::Trace));
        assert_eq!(parse_level("off"), Some(LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(parse_level(""), None);
    }

    #[test]
    fn init_twice_is_fine() {
        init(LevelFilter::Info);
        init(LevelFilter::Debug);
        log::info!("logger test line");
        log::logger().flush();
    }
}
