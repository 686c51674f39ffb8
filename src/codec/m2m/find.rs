//! Finding a stateful encoder node (`/dev/video*`: M2M_MPLANE, `YU12` in, the codec out) and
//! choosing the recorder's H.264 encoder: the M2M one, or OpenH264.

use super::{open_fd, xioctl, M2mEncoder, M2mSettings, BUF_CAPTURE_MPLANE, BUF_OUTPUT_MPLANE, CAP_DEVICE_CAPS, CAP_VIDEO_M2M_MPLANE, FOURCC_FWHT, FOURCC_H264, FOURCC_YU12};
use crate::codec::encoder::{EncoderError, H264Settings, VideoEncoder};
use std::ffi::c_void;
use std::mem;
use std::path::{Path, PathBuf};
use v4l::v4l_sys::{v4l2_capability, v4l2_fmtdesc};
use v4l::v4l2::vidioc;

/// Does the node at `path` encode raw `YU12` frames to `codec` through the multiplanar M2M
/// API? The node's card name when it does.
pub fn probe(path: &Path, codec: u32) -> Option<String> {
    let fd = open_fd(path).ok()?;
    let r = probe_fd(fd, codec);
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    r
}

fn probe_fd(fd: i32, codec: u32) -> Option<String> {
    // SAFETY: all-zero is a valid v4l2_capability; QUERYCAP fills it.
    let mut cap: v4l2_capability = unsafe { mem::zeroed() };
    // SAFETY: QUERYCAP takes a v4l2_capability.
    unsafe { xioctl(fd, vidioc::VIDIOC_QUERYCAP, &mut cap as *mut _ as *mut c_void) }.ok()?;
    let caps = if cap.capabilities & CAP_DEVICE_CAPS != 0 { cap.device_caps } else { cap.capabilities };
    if caps & CAP_VIDEO_M2M_MPLANE == 0 {
        return None;
    }
    if !has_format(fd, BUF_CAPTURE_MPLANE, codec) || !has_format(fd, BUF_OUTPUT_MPLANE, FOURCC_YU12) {
        return None;
    }
    let n = cap.card.iter().position(|&c| c == 0).unwrap_or(cap.card.len());
    Some(String::from_utf8_lossy(&cap.card[..n]).into_owned())
}

fn has_format(fd: i32, typ: u32, want: u32) -> bool {
    for index in 0..64 {
        // SAFETY: all-zero is a valid v4l2_fmtdesc.
        let mut d: v4l2_fmtdesc = unsafe { mem::zeroed() };
        d.index = index;
        d.type_ = typ;
        // SAFETY: ENUM_FMT takes a v4l2_fmtdesc.
        if unsafe { xioctl(fd, vidioc::VIDIOC_ENUM_FMT, &mut d as *mut _ as *mut c_void) }.is_err() {
            return false;
        }
        if d.pixelformat == want {
            return true;
        }
    }
    false
}

/// The first `/dev/video*` node that is a stateful encoder to `codec`, with its card name.
pub fn find_encoder(codec: u32) -> Option<(PathBuf, String)> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().find_map(|(_, p)| probe(&p, codec).map(|card| (p, card)))
}

/// The H.264 encoder for `s`: the stateful M2M encoder when a node offers one (unless
/// `BLACKBOX_ENCODER=software`), else OpenH264. The log says which and why.
pub fn select_h264(s: H264Settings) -> Result<Box<dyn VideoEncoder>, EncoderError> {
    let forced = std::env::var("BLACKBOX_ENCODER").unwrap_or_default();
    let forced_soft = forced == "software";
    if forced == "m2m-fwht" {
        // The qemu rig: record through the M2M client on vicodec, whose only encoder is FWHT
        // (stored as Codec::Fwht: verifiable, not exportable). Never chosen otherwise.
        let Some((path, card)) = find_encoder(FOURCC_FWHT) else {
            return Err(EncoderError::Gone("BLACKBOX_ENCODER=m2m-fwht: no V4L2 M2M FWHT encoder node".into()));
        };
        let deadline_ms = std::env::var("BLACKBOX_M2M_DEADLINE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
        let e = M2mEncoder::open(&path, &card, M2mSettings { h264: s, codec: FOURCC_FWHT, deadline_ms })?;
        log::warn!("video encoder: V4L2 M2M {} ({card}) in FWHT, BLACKBOX_ENCODER=m2m-fwht (test codec: not exportable)", path.display());
        return Ok(Box::new(e));
    }
    if !forced_soft {
        match find_encoder(FOURCC_H264) {
            Some((path, card)) => {
                match M2mEncoder::open(&path, &card, M2mSettings { h264: s, codec: FOURCC_H264, deadline_ms: 2000 }) {
                    Ok(e) => {
                        log::info!("H.264 encoder: V4L2 M2M {} ({card})", path.display());
                        return Ok(Box::new(e));
                    }
                    Err(e) => log::warn!("H.264 encoder: {} ({card}) unusable, software instead: {e}", path.display()),
                }
            }
            None => log::info!("H.264 encoder: no V4L2 M2M H.264 encoder node; software (OpenH264)"),
        }
    } else {
        log::info!("H.264 encoder: software (OpenH264), BLACKBOX_ENCODER=software");
    }
    Ok(Box::new(crate::codec::encoder::SoftH264::new(s)?))
}

