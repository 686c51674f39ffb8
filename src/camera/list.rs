//! `blackbox cameras`: the V4L2 devices, with driver, card, bus, and for capture devices every
//! pixel format with its frame sizes and frame rates (VIDIOC_QUERYCAP, VIDIOC_ENUM_FMT,
//! VIDIOC_ENUM_FRAMESIZES, VIDIOC_ENUM_FRAMEINTERVALS through the v4l crate's ioctl wrapper).
//!
//! The device is opened as a plain file (closed by `File`'s Drop, which never panics) and only
//! queried: nothing is streamed or changed, so listing works while another process records.

use crate::camera::v4l2::{video_nodes, Pixel};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::fs::File;
use std::mem;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use v4l::v4l_sys::{v4l2_capability, v4l2_fmtdesc, v4l2_frmivalenum, v4l2_frmsizeenum};
use v4l::v4l2::{self as raw, vidioc};

const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
const CAP_VIDEO_OUTPUT: u32 = 0x0000_0002;
const CAP_META_CAPTURE: u32 = 0x0080_0000;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const FRMSIZE_DISCRETE: u32 = 1;
const FRMIVAL_DISCRETE: u32 = 1;
/// Enumerations stop here even if a driver keeps answering.
const MAX_ENTRIES: u32 = 256;

/// One `/dev/video*` node.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    /// What the node does: `capture`, `capture (multi-planar)`, `output`, `metadata`, ...
    pub kind: &'static str,
    /// Single-planar video capture: what blackbox records from.
    pub capture: bool,
    pub formats: Vec<FormatInfo>,
    /// Why the node could not be queried (busy, permission, not V4L2).
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FormatInfo {
    pub fourcc: String,
    pub description: String,
    /// blackbox can record it (MJPEG stored as is; H.264 stored as is when recording H.264,
    /// the default; YUYV, NV12 encoded).
    pub usable: bool,
    pub sizes: Vec<SizeInfo>,
}

#[derive(Clone, Debug)]
pub enum SizeInfo {
    Discrete { width: u32, height: u32, intervals: Vec<Interval> },
    /// Any size in the range (stepwise or continuous); frame rates are not listed for these.
    Range { min: (u32, u32), max: (u32, u32), step: (u32, u32) },
}

/// A frame interval in seconds, `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Discrete { num: u32, den: u32 },
    /// Any interval from `min` to `max` (fractions of a second).
    Range { min: (u32, u32), max: (u32, u32) },
}

fn fps(num: u32, den: u32) -> f64 {
    if num == 0 { 0.0 } else { f64::from(den) / f64::from(num) }
}

fn fmt_fps(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 { format!("{}", v.round()) } else { format!("{v:.2}").trim_end_matches('0').to_string() }
}

fn cstr(bytes: &[u8]) -> String {
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}

fn fourcc_str(v: u32) -> String {
    let b = v.to_le_bytes();
    b.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '?' }).collect::<String>().trim_end().to_string()
}

/// `ioctl` into a zeroed C struct; `false` when the driver says no (the end of a list).
fn query<T>(fd: i32, code: vidioc::_IOC_TYPE, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: `arg` is the plain C struct this request code takes, valid for the call.
    unsafe { raw::ioctl(fd, code, arg as *mut T as *mut c_void) }
}

/// Every `/dev/video*` node, queried.
pub fn list() -> Vec<DeviceInfo> {
    video_nodes().iter().map(|p| probe(p)).collect()
}

/// One node, queried (errors go into `error`).
pub fn probe(path: &Path) -> DeviceInfo {
    let mut info = DeviceInfo { path: path.to_path_buf(), kind: "unknown", ..Default::default() };
    let file = match File::options().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) => {
            info.error = Some(format!("cannot open: {e}"));
            return info;
        }
    };
    let fd = file.as_raw_fd();
    // SAFETY: plain C struct; all-zero is valid.
    let mut caps: v4l2_capability = unsafe { mem::zeroed() };
    if let Err(e) = query(fd, vidioc::VIDIOC_QUERYCAP, &mut caps) {
        info.error = Some(format!("not a V4L2 device (VIDIOC_QUERYCAP: {e})"));
        return info;
    }
    info.driver = cstr(&caps.driver);
    info.card = cstr(&caps.card);
    info.bus = cstr(&caps.bus_info);
    let c = if caps.capabilities & CAP_DEVICE_CAPS != 0 { caps.device_caps } else { caps.capabilities };
    info.capture = c & CAP_VIDEO_CAPTURE != 0;
    info.kind = if info.capture {
        "capture"
    } else if c & CAP_VIDEO_CAPTURE_MPLANE != 0 {
        "capture (multi-planar: not supported)"
    } else if c & CAP_VIDEO_OUTPUT != 0 {
        "output"
    } else if c & CAP_META_CAPTURE != 0 {
        "metadata"
    } else {
        "other (vbi, radio, sdr, touch, ...)"
    };
    if info.capture {
        info.formats = formats(fd);
    }
    info
}

fn formats(fd: i32) -> Vec<FormatInfo> {
    let mut out = Vec::new();
    for index in 0..MAX_ENTRIES {
        // SAFETY: plain C struct; all-zero is valid.
        let mut d: v4l2_fmtdesc = unsafe { mem::zeroed() };
        d.index = index;
        d.type_ = BUF_TYPE_VIDEO_CAPTURE;
        if query(fd, vidioc::VIDIOC_ENUM_FMT, &mut d).is_err() {
            break;
        }
        let fourcc = fourcc_str(d.pixelformat);
        out.push(FormatInfo {
            usable: Pixel::from_name(&fourcc).is_some(),
            description: cstr(&d.description),
            sizes: sizes(fd, d.pixelformat),
            fourcc,
        });
    }
    out
}

fn sizes(fd: i32, pixelformat: u32) -> Vec<SizeInfo> {
    let mut out = Vec::new();
    for index in 0..MAX_ENTRIES {
        // SAFETY: plain C struct; all-zero is valid.
        let mut s: v4l2_frmsizeenum = unsafe { mem::zeroed() };
        s.index = index;
        s.pixel_format = pixelformat;
        if query(fd, vidioc::VIDIOC_ENUM_FRAMESIZES, &mut s).is_err() {
            break;
        }
        if s.type_ == FRMSIZE_DISCRETE {
            // SAFETY: the driver filled the `discrete` member (type_ says so).
            let d = unsafe { s.__bindgen_anon_1.discrete };
            out.push(SizeInfo::Discrete { width: d.width, height: d.height, intervals: intervals(fd, pixelformat, d.width, d.height) });
        } else {
            // SAFETY: stepwise or continuous: the `stepwise` member.
            let w = unsafe { s.__bindgen_anon_1.stepwise };
            out.push(SizeInfo::Range {
                min: (w.min_width, w.min_height),
                max: (w.max_width, w.max_height),
                step: (w.step_width, w.step_height),
            });
            break; // a stepwise/continuous answer is the only one
        }
    }
    out
}

fn intervals(fd: i32, pixelformat: u32, width: u32, height: u32) -> Vec<Interval> {
    let mut out = Vec::new();
    for index in 0..MAX_ENTRIES {
        // SAFETY: plain C struct; all-zero is valid.
        let mut iv: v4l2_frmivalenum = unsafe { mem::zeroed() };
        iv.index = index;
        iv.pixel_format = pixelformat;
        iv.width = width;
        iv.height = height;
        if query(fd, vidioc::VIDIOC_ENUM_FRAMEINTERVALS, &mut iv).is_err() {
            break;
        }
        if iv.type_ == FRMIVAL_DISCRETE {
            // SAFETY: the `discrete` member (type_ says so).
            let f = unsafe { iv.__bindgen_anon_1.discrete };
            out.push(Interval::Discrete { num: f.numerator, den: f.denominator });
        } else {
            // SAFETY: stepwise or continuous: the `stepwise` member.
            let s = unsafe { iv.__bindgen_anon_1.stepwise };
            out.push(Interval::Range { min: (s.min.numerator, s.min.denominator), max: (s.max.numerator, s.max.denominator) });
            break;
        }
    }
    out
}

impl Interval {
    fn text(&self) -> String {
        match *self {
            Interval::Discrete { num, den } => fmt_fps(fps(num, den)),
            // The shortest interval is the highest rate.
            Interval::Range { min, max } => format!("{}-{}", fmt_fps(fps(max.0, max.1)), fmt_fps(fps(min.0, min.1))),
        }
    }
}

/// The listing for people.
pub fn to_text(devs: &[DeviceInfo]) -> String {
    let mut o = String::new();
    if devs.is_empty() {
        o.push_str("no /dev/video* devices\n");
    }
    for d in devs {
        let _ = write!(o, "{}", d.path.display());
        if let Some(e) = &d.error {
            let _ = writeln!(o, ": {e}");
            continue;
        }
        let _ = writeln!(o, ": {} — driver {}, bus {}: {}", d.card, d.driver, d.bus, d.kind);
        for f in &d.formats {
            let _ = writeln!(o, "  {:<4}  {}{}", f.fourcc, f.description, if f.usable { "" } else { "  (blackbox can't record this format)" });
            for s in &f.sizes {
                match s {
                    SizeInfo::Discrete { width, height, intervals } => {
                        let rates: Vec<String> = intervals.iter().map(Interval::text).collect();
                        let _ = writeln!(o, "        {:>9}  {} fps", format!("{width}x{height}"), if rates.is_empty() { "?".into() } else { rates.join(" ") });
                    }
                    SizeInfo::Range { min, max, step } => {
                        let _ = writeln!(o, "        {}x{} to {}x{} in steps of {}x{}", min.0, min.1, max.0, max.1, step.0, step.1);
                    }
                }
            }
        }
    }
    o
}

fn json_str(s: &str) -> String {
    crate::json_str::JsonStr(s).to_string()
}

/// The listing as one JSON array (`blackbox cameras --json`).
pub fn to_json(devs: &[DeviceInfo]) -> String {
    let devs: Vec<String> = devs
        .iter()
        .map(|d| {
            let formats: Vec<String> = d
                .formats
                .iter()
                .map(|f| {
                    let sizes: Vec<String> = f
                        .sizes
                        .iter()
                        .map(|s| match s {
                            SizeInfo::Discrete { width, height, intervals } => {
                                let iv: Vec<String> = intervals
                                    .iter()
                                    .map(|i| match *i {
                                        Interval::Discrete { num, den } => {
                                            format!("{{\"interval\":[{num},{den}],\"fps\":{}}}", fmt_fps(fps(num, den)))
                                        }
                                        Interval::Range { min, max } => format!(
                                            "{{\"min_interval\":[{},{}],\"max_interval\":[{},{}]}}",
                                            min.0, min.1, max.0, max.1
                                        ),
                                    })
                                    .collect();
                                format!("{{\"width\":{width},\"height\":{height},\"intervals\":[{}]}}", iv.join(","))
                            }
                            SizeInfo::Range { min, max, step } => format!(
                                "{{\"min\":[{},{}],\"max\":[{},{}],\"step\":[{},{}]}}",
                                min.0, min.1, max.0, max.1, step.0, step.1
                            ),
                        })
                        .collect();
                    format!(
                        "{{\"fourcc\":{},\"description\":{},\"usable\":{},\"sizes\":[{}]}}",
                        json_str(&f.fourcc),
                        json_str(&f.description),
                        f.usable,
                        sizes.join(",")
                    )
                })
                .collect();
            format!(
                "{{\"path\":{},\"driver\":{},\"card\":{},\"bus\":{},\"kind\":{},\"capture\":{},\"error\":{},\"formats\":[{}]}}",
                json_str(&d.path.display().to_string()),
                json_str(&d.driver),
                json_str(&d.card),
                json_str(&d.bus),
                json_str(d.kind),
                d.capture,
                d.error.as_deref().map_or("null".to_string(), json_str),
                formats.join(",")
            )
        })
        .collect();
    format!("[{}]", devs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_non_v4l2_node_is_reported_not_a_panic() {
        let d = probe(Path::new("/nonexistent/video7"));
        assert!(d.error.as_deref().unwrap().starts_with("cannot open"), "{d:?}");
        let d = probe(Path::new("/dev/null"));
        assert!(d.error.as_deref().unwrap().contains("not a V4L2 device"), "{d:?}");
        let text = to_text(std::slice::from_ref(&d));
        assert!(text.starts_with("/dev/null: not a V4L2 device"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&to_json(&[d])).unwrap();
        assert_eq!(json[0]["path"], "/dev/null");
        assert_eq!(json[0]["capture"], false);
    }

    #[test]
    fn formats_sizes_and_rates_print_and_parse_as_json() {
        let d = DeviceInfo {
            path: "/dev/video0".into(),
            driver: "vivid".into(),
            card: "vivid-000-vid-cap \"x\"".into(),
            bus: "platform:vivid-000".into(),
            kind: "capture",
            capture: true,
            formats: vec![
                FormatInfo {
                    fourcc: "YUYV".into(),
                    description: "YUYV 4:2:2".into(),
                    usable: true,
                    sizes: vec![SizeInfo::Discrete {
                        width: 640,
                        height: 360,
                        intervals: vec![Interval::Discrete { num: 1, den: 30 }, Interval::Discrete { num: 2, den: 25 }],
                    }],
                },
                FormatInfo {
                    fourcc: "H264".into(),
                    description: "H.264".into(),
                    usable: false,
                    sizes: vec![SizeInfo::Range { min: (16, 16), max: (1920, 1080), step: (2, 2) }],
                },
            ],
            error: None,
        };
        let t = to_text(std::slice::from_ref(&d));
        assert!(t.contains("640x360  30 12.5 fps"), "{t}");
        assert!(t.contains("16x16 to 1920x1080 in steps of 2x2"), "{t}");
        assert!(t.contains("H264  H.264  (blackbox can't record this format)"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&to_json(&[d])).unwrap();
        assert_eq!(j[0]["card"], "vivid-000-vid-cap \"x\"");
        assert_eq!(j[0]["formats"][0]["sizes"][0]["intervals"][1]["fps"], 12.5);
        assert_eq!(j[0]["formats"][1]["usable"], false);
    }

    #[test]
    fn fourccs_print_as_text() {
        assert_eq!(fourcc_str(u32::from_le_bytes(*b"YUYV")), "YUYV");
        assert_eq!(fourcc_str(u32::from_le_bytes(*b"Y8  ")), "Y8");
        assert_eq!(fourcc_str(u32::from_le_bytes([0x01, b'A', b'B', b'C'])), "?ABC");
    }
}
