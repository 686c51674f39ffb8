//! The order of the store's durable steps, read from a trace of the real binary's system calls
//! (strace). A kill -9 can't test this: the page cache survives a killed process. A power cut
//! does not, and then only what a directory fsync or fdatasync made durable counts.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_blackbox");

fn have_strace() -> bool {
    Command::new("strace").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The path strace -y shows for a file-descriptor argument: `5</tmp/x/segments>` -> path.
fn fd_path(arg: &str) -> Option<&str> {
    let a = arg.find('<')?;
    let b = arg.rfind('>')?;
    (a < b).then(|| &arg[a + 1..b])
}

/// The quoted paths in a rename call: `renameat2(AT_FDCWD<..>, "/a", AT_FDCWD<..>, "/b", 0)`.
fn quoted(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

#[test]
fn a_renamed_segment_is_never_written_before_the_directory_fsync_that_makes_its_name_durable() {
    // Found by scripts/powercut: retention recycled the oldest segment into the next one (a
    // rename to the new `.open` name), the new header was written and fdatasync'd, and the power
    // went before the directory fsync. The rename was lost and the header was not: the old
    // closed name, with 16 frames in its name, held another segment's header, and verify
    // called it damage. The rule: a segment file whose name changed is not written until the
    // directory fsync has made the new name durable.
    if !have_strace() {
        if std::env::var_os("BLACKBOX_REQUIRE_STRACE").is_some() {
            panic!("strace is not installed (scripts/test installs it)");
        }
        eprintln!("skipped: strace is not installed (apt-get install strace)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    fs::create_dir_all(&data).unwrap();
    // 1 s segments of 320x240 at 60 fps, quality 95; the cap counts footage, and 0.01 GiB
    // holds about 6 MiB of it next to the 4 MiB segment being written, so retention recycles
    // one at nearly every rotation after the first few seconds.
    fs::write(
        data.join("config.json"),
        "{\"video_res_width\": 320, \"video_res_height\": 240, \"video_fps\": 60, \"segment_length_s\": 1, \"mjpeg_quality\": 95, \"video_codec\": \"mjpeg\", \
         \"commit_interval_ms\": 50, \"storage_cap_gb\": 0.01, \"min_free_mb\": 0, \"listen\": \"127.0.0.1:0\"}",
    )
    .unwrap();
    let trace = d.path().join("trace");
    let child = Command::new("strace")
        .args(["-f", "-qq", "-y", "-s", "0", "-e", "trace=rename,renameat,renameat2,fsync,fdatasync,pwrite64,pwritev,pwritev2,write", "-o"])
        .arg(&trace)
        .arg(BIN)
        .args(["run", "--source", "synthetic", "--data"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_secs(14));
    // SIGTERM to blackbox itself (strace's child): a clean stop.
    let _ = Command::new("pkill").args(["-TERM", "-P", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let text = fs::read_to_string(&trace).unwrap();
    let seg_dir = data.join("segments");
    let seg_dir = seg_dir.to_str().unwrap();
    check_order(&text, seg_dir, &log);
    assert!(log.contains("retention: recycling"), "no segment was recycled, the test saw nothing: {log}");
}

fn check_order(text: &str, seg_dir: &str, log: &str) {
    let mut not_durable: Vec<String> = Vec::new(); // new names since the last directory fsync
    let (mut renames, mut dir_syncs, mut checked) = (0, 0, 0);
    for line in text.lines() {
        // "PID call(args) = ret"
        let Some(call) = line.split_whitespace().nth(1) else { continue };
        let name = call.split('(').next().unwrap_or("");
        match name {
            "rename" | "renameat" | "renameat2" => {
                if let Some(to) = quoted(line).get(1)
                    && to.starts_with(seg_dir)
                {
                    renames += 1;
                    not_durable.push(to.to_string());
                }
            }
            "fsync" | "fdatasync" => {
                let arg = &call[name.len() + 1..];
                if fd_path(arg) == Some(seg_dir) {
                    dir_syncs += 1;
                    not_durable.clear();
                }
            }
            "pwrite64" | "pwritev" | "pwritev2" | "write" => {
                let arg = &call[name.len() + 1..];
                if let Some(p) = fd_path(arg)
                    && p.starts_with(seg_dir)
                {
                    checked += 1;
                    assert!(
                        !not_durable.iter().any(|n| n == p),
                        "{p} was written before a directory fsync made its new name durable:\n{line}\n(blackbox log: {log})"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(renames > 5 && dir_syncs > 5 && checked > 100, "the trace shows too little: {renames} renames, {dir_syncs} directory fsyncs, {checked} writes");
    let _ = Path::new(seg_dir);
}
