//! [`write_atomic`]: replace a small file so that a crash leaves either the old or the new
//! contents (used for the config file and the store's protected-ranges file).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Replace `path` with `bytes` atomically: write `<name>.tmp` in the same directory, fsync it,
/// rename it over `path`, then fsync the directory. After a crash, `path` holds either the
/// old or the new contents (a stale `<name>.tmp` may remain; it is overwritten next time).
/// Errors name the file involved.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file created as `mode` (e.g. 0o600 for a secret): the temporary
/// file has that mode before a byte is written, so the contents are never readable by others.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let with_path =
        |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let written = (|| {
        // A stale temp file from a crash would keep its old mode through `open`: remove it and
        // create the file afresh, so it has `mode` (less the umask) from the start.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(path, e));
    }
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        // Some file systems cannot fsync a directory; the rename is then as durable as it gets.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(()),
        Err(e) => Err(with_path(dir, e)),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::temp_dir;

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let dir = temp_dir("atomic");
        let path = dir.join("config.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        // A stale temp file from a crash is simply overwritten.
        fs::write(dir.join("config.json.tmp"), b"stale").unwrap();
        write_atomic(&path, b"third").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"third");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["config.json".to_string()]);
        // Errors name the path.
        let missing = dir.join("no/such/dir/config.json");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
        assert!(write_atomic(Path::new("/"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
