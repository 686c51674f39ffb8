//! The track as GPX 1.1 (`GET /api/export.gpx`, `blackbox export --gpx`): one `trkseg` per
//! stretch without a gap over 10 s; each point's elevation, time, satellites, and speed (m/s)
//! and course in Garmin's TrackPointExtension v2, which mapping tools read.

use super::track::Point;
use crate::clock::Iso;
use std::fmt::Write;

/// Points further apart start a new track segment.
const GAP_NS: i64 = 10_000_000_000;
/// The most points one GPX holds (about 2.3 days at one a second; ~25 MB).
pub const MAX_POINTS: usize = 200_000;

pub fn write(points: &[Point], from: i64, to: i64) -> String {
    let mut o = String::with_capacity(400 + points.len() * 260);
    let _ = write!(
        o,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <gpx version=\"1.1\" creator=\"blackbox {}\" xmlns=\"http://www.topografix.com/GPX/1/1\" \
         xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v2\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd\">\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = (from, to);
    match (points.first(), points.last()) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.utc_ns, b.utc_ns);
            let _ = writeln!(o, "<metadata><name>blackbox track {} to {}</name><time>{}</time></metadata>", Iso(a), Iso(b), Iso(a));
            let _ = writeln!(o, "<trk><name>blackbox {} to {}</name>", Iso(a), Iso(b));
        }
        _ => o.push_str("<metadata><name>blackbox track (no points in this range)</name></metadata>\n<trk><name>blackbox</name>\n"),
    }
    let mut prev: Option<i64> = None;
    for p in points {
        if prev.is_none_or(|t| p.utc_ns - t > GAP_NS) {
            if prev.is_some() {
                o.push_str("</trkseg>\n");
            }
            o.push_str("<trkseg>\n");
        }
        prev = Some(p.utc_ns);
        let _ = write!(o, "<trkpt lat=\"{:.7}\" lon=\"{:.7}\">", p.lat, p.lon);
        if let Some(e) = p.altitude_m {
            let _ = write!(o, "<ele>{e:.1}</ele>");
        }
        let _ = write!(o, "<time>{}</time>", Iso(p.utc_ns));
        if p.satellites > 0 {
            let _ = write!(o, "<sat>{}</sat>", p.satellites);
        }
        let _ = write!(o, "<extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>{:.2}</gpxtpx:speed>", p.speed_mps);
        if let Some(c) = p.course_deg {
            // [0, 360): 360 (and what rounds to it) is north, 0.
            let _ = write!(o, "<gpxtpx:course>{:.1}</gpxtpx:course>", if c >= 359.95 { 0.0 } else { c });
        }
        o.push_str("</gpxtpx:TrackPointExtension></extensions></trkpt>\n");
    }
    if prev.is_some() {
        o.push_str("</trkseg>\n");
    }
    o.push_str("</trk>\n</gpx>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_gaps() {
        let p = |t: i64| Point { utc_ns: t * 1_000_000_000, lat: 1.5, lon: -2.25, speed_mps: 3.0, course_deg: Some(360.0), altitude_m: None, satellites: 0 };
        let g = write(&[p(100), p(101), p(130), p(131)], 0, 0);
        assert_eq!(g.matches("<trkseg>").count(), 2, "{g}");
        assert_eq!(g.matches("<trkpt ").count(), 4);
        assert!(g.contains("<trkpt lat=\"1.5000000\" lon=\"-2.2500000\"><time>1970-01-01T00:01:40.000Z</time>"), "{g}");
        assert!(g.contains("<gpxtpx:course>0.0</gpxtpx:course>"), "360 is 0: {g}");
        let empty = write(&[], 0, 1);
        assert!(empty.contains("<trk>") && !empty.contains("<trkseg>"), "{empty}");
    }
}
