//! V4L2 device nodes: which paths may be opened as a camera, and which capture devices there
//! are.

use super::{V4l2Camera, V4l2Options};
use crate::camera::CameraError;
use std::path::{Path, PathBuf};

/// Major number of V4L2 device nodes (`/dev/video*`, `/dev/v4l-subdev*`).
pub const V4L2_MAJOR: u32 = 81;

/// Whether `device` may be opened as a camera: a character device with major 81, or a path
/// under `/dev/` that does not exist yet (a USB camera plugged in later: waited for). Anything
/// else gets the same error whether or not it exists, so the setting can't probe the file
/// system (issue 15).
pub fn check_device(device: &Path) -> Result<(), CameraError> {
    let refused = || {
        CameraError::Invalid(format!(
            "{}: not a V4L2 video device (camera_device takes a character device with major {V4L2_MAJOR}, e.g. /dev/video0)",
            device.display()
        ))
    };
    if !device.is_absolute() || !device.starts_with("/dev/") || device.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(refused());
    }
    match std::fs::metadata(device) {
        Ok(m) => {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if m.file_type().is_char_device() && rustix::fs::major(m.rdev()) == V4L2_MAJOR {
                Ok(())
            } else {
                Err(refused())
            }
        }
        // Under /dev/ only: a camera not plugged in (yet). Same text as the open's (the rig
        // and the logs look for it).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CameraError::Disconnected(format!("{}: {e}", device.display()))),
        Err(_) => Err(refused()),
    }
}

/// The `/dev/video*` nodes, in numeric order.
pub fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// The first `/dev/video*` that opens as a capture device with a usable format, opened.
pub fn first_usable(width: u32, height: u32, fps: u32, quality: u8, opts: V4l2Options) -> Option<V4l2Camera> {
    for node in video_nodes() {
        match V4l2Camera::open_with(&node, width, height, fps, quality, opts) {
            Ok(c) => return Some(c),
            Err(e) => log::info!("camera {}: not usable: {e}", node.display()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v4l2_character_devices_are_taken_and_the_error_says_nothing_of_other_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("video0");
        std::fs::write(&file, b"x").unwrap();
        let msg = |p: &str| match check_device(Path::new(p)) {
            Err(CameraError::Invalid(m)) => m.replace(p, "PATH"),
            other => panic!("{p}: {other:?}"),
        };
        // Existing or not, file, directory or another device: one answer.
        let f = file.display().to_string();
        let answers: Vec<String> =
            [f.as_str(), "/etc/shadow", "/etc/no-such-file", "/dev/null", "/dev/shm", "/dev/../etc/passwd", "relative/v9"].iter().map(|p| msg(p)).collect();
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        assert!(answers[0].contains("major 81"), "{}", answers[0]);
        // A camera not plugged in yet is waited for.
        assert!(matches!(check_device(Path::new("/dev/video-not-plugged-in")), Err(CameraError::Disconnected(_))));
    }
}
