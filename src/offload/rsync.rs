//! Offload to a NAS by running the `rsync` program (issue 17 point 3): to an rsync daemon
//! (`rsync://[user@]host[:port]/module/path`, the password from `rsync_password`) or over SSH
//! (`[user@]host:path`, a key file, the port). Each segment goes to `DEST/DEVICE/DAY/NAME`
//! with `--partial` (a cut transfer resumes from what arrived), a timeout and the bandwidth
//! limit, and counts as verified only after a second pass, `--checksum --dry-run
//! --itemize-changes`, finds nothing to change: rsync's own checksums of both ends agree.
//! Never `--remove-source-files`: retention decides what goes.

use super::manifest::Verified;
use super::settings::Settings;
use super::upload::{Segment, Sent, UploadError};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one transfer may go without progress (rsync's `--timeout`).
const IO_TIMEOUT_S: u32 = 60;

/// Checks `rsync_dest`: `rsync://[user@]host[:port]/module[/path]` or `[user@]host:path`.
pub fn check_dest(d: &str) -> Result<(), String> {
    let ok_chars = d.bytes().all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'\'' | b'"' | b'\\' | b'`' | b'$' | b';' | b'&' | b'|' | b'*' | b'?'));
    if !ok_chars || d.starts_with('-') || d.len() > 300 {
        return Err("rsync_dest: printable, without spaces, quotes or shell characters".into());
    }
    if let Some(rest) = d.strip_prefix("rsync://") {
        let (host, module) = rest.split_once('/').ok_or("rsync_dest: rsync://[user@]host[:port]/module[/path]")?;
        if host.is_empty() || module.is_empty() {
            return Err("rsync_dest: rsync://[user@]host[:port]/module[/path]".into());
        }
        return Ok(());
    }
    match d.split_once(':') {
        Some((host, path)) if !host.is_empty() && !host.contains('/') && !path.is_empty() => Ok(()),
        _ => Err("rsync_dest: rsync://[user@]host[:port]/module[/path] (a daemon) or [user@]host:path (SSH)".into()),
    }
}

fn is_daemon(d: &str) -> bool {
    d.starts_with("rsync://")
}

/// The rsync command with what every run shares: SSH or the daemon's password, the timeout.
fn base(st: &Settings) -> Command {
    let mut c = Command::new("rsync");
    c.arg(format!("--timeout={IO_TIMEOUT_S}"));
    if is_daemon(&st.rsync_dest) {
        c.arg("--contimeout=20");
        if !st.rsync_password.is_empty() {
            c.env("RSYNC_PASSWORD", &st.rsync_password);
        }
    } else {
        let mut ssh = format!("ssh -p {} -o BatchMode=yes -o ConnectTimeout=20 -o StrictHostKeyChecking=accept-new", st.rsync_ssh_port);
        if !st.rsync_ssh_key.is_empty() {
            ssh.push_str(&format!(" -i {}", st.rsync_ssh_key));
        }
        if !st.rsync_known_hosts.is_empty() {
            ssh.push_str(&format!(" -o UserKnownHostsFile={}", st.rsync_known_hosts));
        }
        c.arg("-e").arg(ssh);
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of the child; no memory of ours is
    // touched between fork and exec. rsync then dies with the offload thread (a power cut
    // ends both; a stopped blackbox must not leave a transfer running).
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    c
}

/// Runs `c`, polling `stop`; its stdout, or what it said went wrong.
fn run(mut c: Command, stop: &AtomicBool) -> Result<String, UploadError> {
    let mut child = c.spawn().map_err(|e| UploadError::Mismatch(format!("cannot run rsync: {e} (install the rsync package)")))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => return Err(UploadError::Io(e)),
        }
        if stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UploadError::Stopped);
        }
        std::thread::sleep(Duration::from_millis(100).min(started.elapsed() + Duration::from_millis(10)));
    }
    let out = child.wait_with_output().map_err(UploadError::Io)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // The daemon's own words (`@ERROR: auth failed on module ...`) before rsync's summary.
        let lines: Vec<&str> = err.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let msg = lines.iter().find(|l| l.starts_with("@ERROR")).or(lines.last()).copied().unwrap_or("").to_string();
        return Err(UploadError::Mismatch(format!("rsync exited with {}: {msg}", out.status.code().unwrap_or(-1))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Copies `seg` to `DEST/REL` and verifies it with a checksum pass.
pub fn copy(st: &Settings, seg: &Segment, rel: &str, target: &str, stop: &AtomicBool) -> Result<(Verified, Sent), UploadError> {
    let meta = std::fs::metadata(&seg.path).map_err(|_| UploadError::Recycled)?;
    if meta.len() != seg.used {
        // rsync sends whole files: a segment whose unused preallocation was not trimmed would
        // not arrive as its used bytes. (Trim happens at close and at every start.)
        return Err(UploadError::Mismatch(format!("{} holds {} bytes, its footage {}; it is trimmed at the next start", seg.name, meta.len(), seg.used)));
    }
    let dest = format!("{}/{rel}", st.rsync_dest.trim_end_matches('/'));
    let mut c = base(st);
    c.args(["--partial", "--partial-dir=.rsync-partial", "--mkpath", "--times", "--chmod=F0600"]);
    if st.offload_kbps > 0 {
        // rsync's --bwlimit is in KiB/s.
        c.arg(format!("--bwlimit={}", (u64::from(st.offload_kbps) * 1000 / 8 / 1024).max(1)));
    }
    c.arg("--").arg(&seg.path).arg(&dest);
    run(c, stop)?;
    // The file must still be the segment we meant (retention renames before it recycles).
    match std::fs::metadata(&seg.path) {
        Ok(m) if m.ino() == meta.ino() => {}
        _ => return Err(UploadError::Recycled),
    }
    // The checksum pass: rsync compares both ends' checksums and lists what it would send.
    let mut v = base(st);
    v.args(["--checksum", "--dry-run", "--itemize-changes", "--"]).arg(&seg.path).arg(&dest);
    let out = run(v, stop)?;
    let changes: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    if !changes.is_empty() {
        return Err(UploadError::Mismatch(format!("the checksum pass finds the copy different: {}", changes.join("; "))));
    }
    let sent = Sent { bytes_sent: seg.used, parts_sent: 1, ..Sent::default() };
    Ok((Verified { target: target.to_string(), size: seg.used, etag: "rsync-checksum".into(), utc_ns: crate::clock::now_utc_ns() }, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        for ok in ["rsync://cam@nas/footage", "rsync://nas:873/m/sub/dir", "cam@nas.local:/volume1/dashcam", "nas:footage"] {
            assert!(check_dest(ok).is_ok(), "{ok}");
        }
        for bad in ["", "nas", "rsync://nas", "rsync:///m", "-e sh", "nas:/a b", "nas:$(reboot)", "/local/path", "nas:x;y"] {
            assert!(check_dest(bad).is_err(), "{bad}");
        }
    }
}
