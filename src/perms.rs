//! Who may read the footage: the data dir is 0700 and everything in it 0600 (issue 15).
//!
//! `blackbox run` sets its umask to 077 before it creates anything, so every segment, journal,
//! config and secret file it writes is created 0600 and every directory 0700, whatever mode
//! the code asks for. [`tighten`] fixes what is already there (a data dir made by an older
//! version, or copied in under umask 022) once at start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// umask 077 for this process: new files 0600, new directories 0700.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Whether we run as a systemd service (its stderr goes to the journal).
pub fn under_systemd() -> bool {
    std::env::var_os("INVOCATION_ID").is_some() || std::env::var_os("JOURNAL_STREAM").is_some()
}

/// Takes group and other permissions away from `data_dir`, and from the files and directories
/// in it (two levels: `segments/` and the like). Symlinks are left alone. Returns how many
/// modes were changed (logged when any).
pub fn tighten(data_dir: &Path) -> usize {
    let mut changed = 0;
    fix(data_dir, &mut changed);
    walk(data_dir, 2, &mut changed);
    if changed > 0 {
        log::warn!("{}: {changed} files and directories were readable by others; now owner only (0600/0700)", data_dir.display());
    }
    changed
}

fn walk(dir: &Path, depth: u32, changed: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.file_type().is_symlink() {
            continue;
        }
        fix(&p, changed);
        if meta.is_dir() && depth > 1 {
            walk(&p, depth - 1, changed);
        }
    }
}

fn fix(p: &Path, changed: &mut usize) {
    let Ok(meta) = std::fs::symlink_metadata(p) else { return };
    let mode = meta.permissions().mode();
    if meta.file_type().is_symlink() || mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7700)) {
        Ok(()) => *changed += 1,
        Err(e) => log::warn!("{}: cannot make it owner-only: {e}", p.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_data_dir_is_made_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir_all(data.join("segments")).unwrap();
        std::fs::write(data.join("config.json"), b"{}").unwrap();
        std::fs::write(data.join("segments/a.seg"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", data.join("link")).unwrap();
        for (p, m) in [("", 0o755), ("segments", 0o775), ("config.json", 0o644), ("segments/a.seg", 0o666)] {
            std::fs::set_permissions(data.join(p), std::fs::Permissions::from_mode(m)).unwrap();
        }
        assert_eq!(tighten(&data), 4);
        for (p, m) in [("", 0o700), ("segments", 0o700), ("config.json", 0o600), ("segments/a.seg", 0o600)] {
            assert_eq!(std::fs::metadata(data.join(p)).unwrap().permissions().mode() & 0o7777, m, "{p}");
        }
        assert_eq!(tighten(&data), 0);
        // The symlink's target was not touched.
        assert_ne!(std::fs::metadata("/etc/hostname").unwrap().permissions().mode() & 0o077, 0);
    }
}
