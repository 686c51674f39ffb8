//! The session description (SDP, RFC 4566) an RTSP camera answers DESCRIBE with: its first
//! H.264 video track (payload type, control URL, parameter sets, frame rate), or a refusal that
//! names what the camera sends instead.

use super::CameraError;

fn bad(msg: impl Into<String>) -> CameraError {
    CameraError::Invalid(msg.into())
}

/// `rel` against `base` (RFC 2326 C.1.1: a control URL may be absolute or relative).
pub(super) fn join(base: &str, rel: &str) -> String {
    if rel.starts_with("rtsp://") || rel.starts_with("rtsps://") {
        return rel.to_string();
    }
    if base.ends_with('/') { format!("{base}{rel}") } else { format!("{base}/{rel}") }
}

/// The SDP's first H.264 video track.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Sdp {
    pub(super) payload_type: u8,
    pub(super) control: Option<String>,
    pub(super) session_control: Option<String>,
    pub(super) params: Vec<Vec<u8>>,
    pub(super) framerate: Option<u32>,
}

impl Sdp {
    pub(super) fn parse(sdp: &str) -> Result<Sdp, CameraError> {
        let mut out = Sdp::default();
        let (mut in_video, mut found, mut seen_media) = (false, false, false);
        let mut codecs = Vec::new();
        let mut pts: Vec<u8> = Vec::new();
        for line in sdp.lines().map(str::trim) {
            if let Some(m) = line.strip_prefix("m=") {
                if found {
                    break;
                }
                seen_media = true;
                let f: Vec<&str> = m.split_whitespace().collect();
                in_video = f.first() == Some(&"video");
                pts = f.iter().skip(3).filter_map(|p| p.parse().ok()).collect();
                continue;
            }
            let Some(a) = line.strip_prefix("a=") else { continue };
            if !seen_media {
                if let Some(c) = a.strip_prefix("control:") {
                    out.session_control = Some(c.trim().to_string());
                }
                continue;
            }
            if !in_video {
                continue;
            }
            if let Some(r) = a.strip_prefix("rtpmap:") {
                let (pt, enc) = r.split_once(' ').unwrap_or((r, ""));
                let Ok(pt) = pt.trim().parse::<u8>() else { continue };
                if !pts.contains(&pt) {
                    continue;
                }
                let name = enc.split('/').next().unwrap_or("").to_ascii_uppercase();
                if name == "H264" && !found {
                    found = true;
                    out.payload_type = pt;
                } else {
                    codecs.push(name);
                }
            } else if let Some(f) = a.strip_prefix("fmtp:") {
                let (pt, rest) = f.split_once(' ').unwrap_or((f, ""));
                if found && pt.trim().parse::<u8>().ok() == Some(out.payload_type) {
                    if rest.split(';').any(|p| p.trim().eq_ignore_ascii_case("packetization-mode=2")) {
                        return Err(bad("the camera sends H.264 in interleaved packetization mode (2), which blackbox doesn't read"));
                    }
                    if let Some(s) = rest.split(';').find_map(|p| p.trim().strip_prefix("sprop-parameter-sets=")) {
                        out.params = s.split(',').filter_map(|b| crate::base64::decode(b.trim())).filter(|n| !n.is_empty()).collect();
                    }
                }
            } else if let Some(c) = a.strip_prefix("control:") {
                out.control = Some(c.trim().to_string());
            } else if let Some(f) = a.strip_prefix("framerate:") {
                out.framerate = f.trim().parse::<f64>().ok().filter(|f| (1.0..=240.0).contains(f)).map(|f| f.round() as u32);
            }
        }
        if found {
            return Ok(out);
        }
        if codecs.iter().any(|c| c == "H265" || c == "HEVC") {
            return Err(bad("the camera sends H.265, which blackbox doesn't store: set the camera's stream to H.264"));
        }
        if codecs.is_empty() {
            return Err(bad("the camera's stream description has no video track"));
        }
        Err(bad(format!("the camera sends {}, which blackbox doesn't store: set the camera's stream to H.264", codecs.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_h264_video_track_is_found() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\na=control:*\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000\r\na=control:audio\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=Z0LAHtoCgL/l,aM48gA==\r\n\
                   a=framerate:25\r\na=control:stream=0\r\n";
        let s = Sdp::parse(sdp).unwrap();
        assert_eq!(s.payload_type, 96);
        assert_eq!(s.control.as_deref(), Some("stream=0"));
        assert_eq!(s.session_control.as_deref(), Some("*"));
        assert_eq!(s.framerate, Some(25));
        assert_eq!(s.params, vec![vec![0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5], vec![0x68, 0xce, 0x3c, 0x80]]);
        assert_eq!(join("rtsp://h/cam/", "stream=0"), "rtsp://h/cam/stream=0");
        assert_eq!(join("rtsp://h/cam", "stream=0"), "rtsp://h/cam/stream=0");
        assert_eq!(join("rtsp://h/cam", "rtsp://h/other"), "rtsp://h/other");
    }

    #[test]
    fn other_codecs_are_refused_by_name() {
        let h265 = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n";
        assert!(Sdp::parse(h265).unwrap_err().to_string().contains("H.265"));
        let mjpeg = "v=0\r\nm=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\n";
        assert!(Sdp::parse(mjpeg).unwrap_err().to_string().contains("JPEG"));
        assert!(Sdp::parse("v=0\r\nm=audio 0 RTP/AVP 0\r\n").unwrap_err().to_string().contains("no video"));
        let mode2 = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=2\r\n";
        assert!(Sdp::parse(mode2).unwrap_err().to_string().contains("mode (2)"));
    }
}
