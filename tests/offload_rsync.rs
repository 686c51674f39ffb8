//! Offload to a NAS by rsync (issue 17 point 3) against real servers on 127.0.0.1: Debian's
//! rsync daemon (a module with `auth users`) and OpenSSH's sshd (a key). A copy counts only
//! after the checksum pass; a cut transfer resumes from the partial file; a copy damaged on the
//! NAS (same size, same time: rsync's quick check would skip it) is caught by the checksum pass.

use blackbox::camera::{Codec, FrameMeta};
use blackbox::offload::rsync;
use blackbox::offload::settings::{Mode, Settings, Target};
use blackbox::offload::upload::{Segment, UploadError};
use blackbox::store::{catalog, Store, StoreOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::run::Run;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn have(cmd: &str) -> bool {
    let ok = Command::new(cmd).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(ok || std::env::var("BLACKBOX_SKIP_RSYNC").as_deref() == Ok("1"), "{cmd} is needed: scripts/test installs rsync and openssh-server (BLACKBOX_SKIP_RSYNC=1 skips)");
    ok
}

struct Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "server on {port} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An rsync daemon with module `footage` (user `cam`, password `nas-pw`).
fn rsync_daemon() -> Server {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("footage");
    std::fs::create_dir_all(&data).unwrap();
    let secrets = root.path().join("secrets");
    std::fs::write(&secrets, "cam:nas-pw\n").unwrap();
    std::fs::set_permissions(&secrets, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = free_port();
    let conf = root.path().join("rsyncd.conf");
    std::fs::write(
        &conf,
        format!(
            "pid file = {0}/rsyncd.pid\nuse chroot = false\nuid = root\ngid = root\n[footage]\n  path = {1}\n  read only = false\n  auth users = cam\n  secrets file = {2}\n",
            root.path().display(),
            data.display(),
            secrets.display()
        ),
    )
    .unwrap();
    let child = Command::new("rsync")
        .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--config={}", conf.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    Server { child, root, port }
}

/// sshd on 127.0.0.1 accepting one key for root; returns it and the key's path.
fn sshd() -> (Server, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let p = root.path();
    let keygen = |file: &str| {
        let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(p.join(file)).status().unwrap();
        assert!(st.success());
    };
    keygen("host_key");
    keygen("client_key");
    std::fs::copy(p.join("client_key.pub"), p.join("authorized_keys")).unwrap();
    let port = free_port();
    std::fs::write(
        p.join("sshd_config"),
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {0}/sshd.pid\n",
            p.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let child = Command::new("/usr/sbin/sshd").args(["-D", "-e", "-f"]).arg(p.join("sshd_config")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_port(port);
    let key = p.join("client_key");
    (Server { child, root, port }, key)
}

const T0: i64 = 1_796_465_700_000_000_000; // 2026-12-05T10:15:00Z

/// A store with one closed segment of `frames` x `len` bytes.
fn one_segment(dir: &Path, frames: u64, len: usize) -> catalog::SegmentInfo {
    let o = StoreOptions { segment_length_ns: 3_600_000_000_000, min_free_bytes: 0, expected_bytes_per_s: 1 << 20, ..StoreOptions::default() };
    let mut s = Store::open(dir, o).unwrap();
    for seq in 0..frames {
        let meta = FrameMeta { mono_ns: 1_000_000_000 + seq * 33_333_333, utc_ns: T0 + (seq * 33_333_333) as i64, codec: Codec::Jpeg, key: true, lost_before: 0 };
        let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let payload: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        s.append_frame(&meta, &payload).unwrap();
    }
    s.close().unwrap();
    catalog::list(&dir.join("segments")).unwrap().closed.pop().unwrap()
}

fn settings(dest: String) -> Settings {
    Settings { mode: Mode::Events, target: Target::Rsync, rsync_dest: dest, rsync_ssh_port: 22, device_name: "car1".into(), ..Settings::defaults() }
}

#[test]
fn rsync_daemon_copy_verifies_resumes_and_the_checksum_pass_catches_damage() {
    if !have("rsync") {
        return;
    }
    let nas = rsync_daemon();
    let d = tempfile::tempdir().unwrap();
    let s = one_segment(d.path(), 60, 100_000); // 6 MB
    let seg = Segment { name: s.name.to_string(), path: d.path().join("segments").join(s.name.as_str()), used: s.used_bytes };
    let mut st = settings(format!("rsync://cam@127.0.0.1:{}/footage/dashcam", nas.port));
    st.rsync_password = "nas-pw".into();
    let rel = st.rsync_rel(None, &seg.name, s.start_utc_ns);
    let remote = nas.root.path().join("footage/dashcam").join(&rel);
    // A transfer cut after ~1 s at 1 Mbit/s leaves a partial file on the NAS.
    st.offload_kbps = 1000;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let dest_dir = remote.parent().unwrap().to_path_buf();
    let cutter = std::thread::spawn(move || {
        // Cut once the transfer is under way (rsync's temporary file is on the NAS), however
        // slow the machine is to start it.
        let t = Instant::now();
        let started = || std::fs::read_dir(&dest_dir).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with('.'))).unwrap_or(false);
        while !started() && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(1000));
        s2.store(true, Ordering::SeqCst);
    });
    let r = rsync::copy(&st, &seg, &rel, "t", &stop);
    cutter.join().unwrap();
    assert!(matches!(r, Err(UploadError::Stopped)), "{r:?}");
    let partial = remote.parent().unwrap().join(".rsync-partial").join(&seg.name);
    let t = Instant::now();
    while !partial.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0 && kept < seg.used, "a partial file on the NAS after the cut ({kept} bytes)");
    assert!(!remote.exists());
    // The resumed transfer completes and verifies; the partial is used up.
    st.offload_kbps = 0;
    let (v, _) = rsync::copy(&st, &seg, &rel, "t", &AtomicBool::new(false)).unwrap();
    assert_eq!(v.size, seg.used);
    let local = std::fs::read(&seg.path).unwrap();
    assert!(std::fs::read(&remote).unwrap() == local, "the NAS's copy is the segment");
    assert!(!partial.exists(), "the partial file was taken up");
    // Damage on the NAS with the same size and time: rsync's quick check would skip the file;
    // the checksum pass finds it, and the copy does not count.
    let mtime = std::fs::metadata(&remote).unwrap().modified().unwrap();
    let mut bytes = local.clone();
    bytes[5000] ^= 0x40;
    std::fs::write(&remote, &bytes).unwrap();
    std::fs::File::options().write(true).open(&remote).unwrap().set_modified(mtime).unwrap();
    let e = rsync::copy(&st, &seg, &rel, "t", &AtomicBool::new(false));
    match e {
        Err(UploadError::Mismatch(m)) => assert!(m.contains("checksum pass"), "{m}"),
        other => panic!("a damaged copy was not caught: {other:?}"),
    }
    // A wrong password: refused, named.
    st.rsync_password = "wrong".into();
    let e = rsync::copy(&st, &seg, &format!("{rel}.2"), "t", &AtomicBool::new(false)).unwrap_err();
    assert!(e.to_string().contains("auth failed"), "{e}");
}

#[test]
fn rsync_over_ssh_with_a_key() {
    if !have("rsync") || !Path::new("/usr/sbin/sshd").exists() {
        assert!(std::env::var("BLACKBOX_SKIP_RSYNC").as_deref() == Ok("1"), "sshd is needed: scripts/test installs openssh-server");
        return;
    }
    let (srv, key) = sshd();
    let d = tempfile::tempdir().unwrap();
    let s = one_segment(d.path(), 20, 50_000);
    let seg = Segment { name: s.name.to_string(), path: d.path().join("segments").join(s.name.as_str()), used: s.used_bytes };
    let dest_dir = srv.root.path().join("nas");
    let mut st = settings(format!("root@127.0.0.1:{}", dest_dir.display()));
    st.rsync_ssh_key = key.display().to_string();
    st.rsync_ssh_port = srv.port;
    st.rsync_known_hosts = srv.root.path().join("known_hosts").display().to_string();
    let rel = st.rsync_rel(None, &seg.name, s.start_utc_ns);
    let (v, _) = rsync::copy(&st, &seg, &rel, "t", &AtomicBool::new(false)).unwrap();
    assert_eq!(v.size, seg.used);
    assert!(std::fs::read(dest_dir.join(&rel)).unwrap() == std::fs::read(&seg.path).unwrap());
    assert!(std::fs::read_to_string(srv.root.path().join("known_hosts")).unwrap().contains("ssh-ed25519"), "the NAS's host key is remembered");
    // Without the key: refused (BatchMode: no password prompt).
    st.rsync_ssh_key = srv.root.path().join("host_key.pub").display().to_string();
    let e = rsync::copy(&st, &seg, &format!("{rel}.2"), "t", &AtomicBool::new(false)).unwrap_err();
    assert!(e.to_string().contains("rsync exited"), "{e}");
}

/// Through `blackbox run`: protected footage goes to the NAS by rsync, verified, in the
/// manifest; the test button works.
#[test]
fn blackbox_run_offloads_protected_footage_by_rsync() {
    if !have("rsync") {
        return;
    }
    let nas = rsync_daemon();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let s = one_segment(&data, 30, 50_000);
    {
        let mut st = Store::open(&data, StoreOptions::default()).unwrap();
        st.protect(s.start_utc_ns, s.end_utc_ns).unwrap();
        st.close().unwrap();
    }
    std::fs::write(
        data.join("offload.conf"),
        format!("offload=events\noffload_target=rsync\nrsync_dest=rsync://cam@127.0.0.1:{}/footage\nrsync_password=nas-pw\ndevice_name=car1\n", nas.port),
    )
    .unwrap();
    let bb = Run::start(d.path());
    bb.wait(60, "the rsync copy verified", |b| b.json("/api/status")["offload"]["verified"].as_u64().unwrap_or(0) >= 1);
    let copy = nas.root.path().join("footage/car1/2026-12-05").join(s.name.as_str());
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(data.join("segments").join(s.name.as_str())).unwrap());
    let (_, body) = bb.http("POST", "/api/offload/test", "").unwrap();
    assert!(body.contains("\"ok\":true"), "{body}");
    let (_, body) = bb.http("GET", "/api/offload", "").unwrap();
    assert!(body.contains("\"rsync_password_set\":true") && !body.contains("nas-pw"), "{body}");
    let log = bb.stop();
    assert!(!log.contains("nas-pw"), "the password in the log");
}
