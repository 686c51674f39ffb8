//! Helpers shared by integration tests (`mod support;` in a test file).

#![allow(dead_code)] // each test file uses some of these

pub mod run;

use blackbox::camera::file::FileCamera;
use blackbox::camera::{Camera, CameraError, FrameMeta, Losses};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `frames` 320x240 JPEG frames of ffmpeg's `testsrc2` at 30 fps, made in `dir` and read back
/// through the file camera, as the recorder would store them.
pub fn testsrc_jpegs(dir: &Path, frames: usize) -> Vec<Vec<u8>> {
    let p = dir.join("clip.mjpeg");
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v"])
        .arg(frames.to_string())
        .args(["-q:v", "6", "-f", "mjpeg"])
        .arg(&p)
        .status()
        .expect("ffmpeg is needed (scripts/test installs it)");
    assert!(st.success());
    let mut cam = FileCamera::open(&p, 30, true, false).unwrap();
    let mut v = Vec::new();
    while let Ok((_, f)) = cam.next_frame() {
        v.push(f.to_vec());
    }
    assert_eq!(v.len(), frames);
    v
}

/// A camera that ends its stream after `left` frames.
pub struct Limited<C> {
    pub inner: C,
    pub left: u64,
}

impl<C: Camera> Camera for Limited<C> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn fps(&self) -> u32 {
        self.inner.fps()
    }
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }
    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        if self.left == 0 {
            return Err(CameraError::EndOfStream);
        }
        self.left -= 1;
        self.inner.next_frame()
    }
    fn losses(&self) -> Losses {
        self.inner.losses()
    }
    fn waits_for_consumer(&self) -> bool {
        self.inner.waits_for_consumer()
    }
    fn request_key_frame(&mut self) {
        self.inner.request_key_frame()
    }
}

/// The framemd5 hashes of the decoded pictures (ffmpeg -xerror: any decode error fails).
pub fn picture_hashes(file: &Path, fmt: Option<&str>) -> Vec<String> {
    let mut c = Command::new("ffmpeg");
    c.args(["-nostdin", "-v", "error", "-xerror"]);
    if let Some(f) = fmt {
        c.args(["-f", f]);
    }
    // Every decoded picture, whatever its time stamp (the default drops pictures that share a
    // tick of the guessed frame rate).
    let o = c.arg("-i").arg(file).args(["-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-"]).output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "ffmpeg on {}: {}", file.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with openssl in
/// `dir`: (CA, certificate, key). For the TLS servers of the offload and alert tests.
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=blackbox test CA"]);
    run(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
    run(&["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "30", "-extfile", "ext.cnf"]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}
