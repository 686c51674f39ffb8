//! GPS through a real tty: `blackbox run` reads NMEA from a pseudo-terminal (the kernel's pty
//! driver, the same tty layer cdc_acm and USB-serial drivers sit under) that a "receiver" in
//! this test writes to at 5 Hz. Judged from `/api/status`: the fix is the last one written,
//! every refused line is counted by cause, the clock from GPS is computed but not set (tests
//! never set the host's clock: BLACKBOX_CLOCK_READONLY=1), and an unplugged receiver is
//! found again when it comes back.

mod support;
use rustix::fd::OwnedFd;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use std::time::{Duration, Instant};
use support::run::Run;

/// A pty pair: the master (this test's end) and the slave's path (blackbox's end).
fn pty() -> (OwnedFd, String) {
    let m = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&m).unwrap();
    unlockpt(&m).unwrap();
    let name = ptsname(&m, Vec::new()).unwrap().into_string().unwrap();
    (m, name)
}

fn sentence(body: &str) -> String {
    let x = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{x:02X}\r\n")
}

/// `ddmm.mmmm,N` / `dddmm.mmmm,E` of signed degrees.
fn coord(v: f64, lat: bool) -> String {
    let (d, hemi) = if lat { (v.abs(), if v < 0.0 { 'S' } else { 'N' }) } else { (v.abs(), if v < 0.0 { 'W' } else { 'E' }) };
    let deg = d.trunc();
    let min = (d - deg) * 60.0;
    if lat { format!("{:02}{:07.4},{hemi}", deg as u32, min) } else { format!("{:03}{:07.4},{hemi}", deg as u32, min) }
}

/// RMC + GGA for GPS time `t_ms` after 2030-06-01T12:00:00Z.
fn fix(t_ms: u64, lat: f64, lon: f64, knots: f64) -> String {
    let s = 12 * 3600 + t_ms / 1000;
    let hms = format!("{:02}{:02}{:02}.{:02}", s / 3600, s / 60 % 60, s % 60, t_ms % 1000 / 10);
    sentence(&format!("GPRMC,{hms},A,{},{},{knots:.1},90.0,010630,,,A", coord(lat, true), coord(lon, false)))
        + &sentence(&format!("GPGGA,{hms},{},{},1,09,0.9,123.4,M,47.0,M,,", coord(lat, true), coord(lon, false)))
}

fn write_all(m: &OwnedFd, s: &str) {
    let mut b = s.as_bytes();
    while !b.is_empty() {
        match rustix::io::write(m, b) {
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("pty write: {e}"),
        }
    }
}

/// Writes `fix` at 5 Hz (GPS time and real time advancing together) until `until` says stop.
fn feed(m: &OwnedFd, lat: f64, lon: f64, knots: f64, secs: u64, mut until: impl FnMut() -> bool) {
    let t = Instant::now();
    let mut k = 0u64;
    while t.elapsed() < Duration::from_secs(secs) && !until() {
        write_all(m, &fix(k * 200, lat, lon, knots));
        k += 1;
        std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed() - Duration::from_millis(200 * (k - 1)).min(t.elapsed())));
    }
}

#[test]
fn nmea_from_a_tty_fix_refusals_clock_and_replug() {
    let d = tempfile::tempdir().unwrap();
    let (m, slave) = pty();
    // The receiver's name in the config is a symlink, as /dev/serial/by-id/... is.
    let link = d.path().join("gps0");
    std::os::unix::fs::symlink(&slave, &link).unwrap();
    let bb = Run::start_with(d.path(), &format!(r#""gps_device": "{}""#, link.display()));
    let gps = |b: &Run| b.json("/api/status")["gps"].clone();
    // Before a fix: noise, a line without a checksum, a bad checksum, a void fix, a
    // week-rollover date (2011 for 2030: out of the window), a bad field; then fixes.
    let bad_sum = sentence("GPRMC,120000.00,A,4717.1140,N,00833.9152,E,1.0,90.0,010630,,,A").replace("*", "*0").replace("*0", "*");
    let mut junk = String::from("\u{1}\u{2}garbage\r\n$GPRMC,120000.00,A,4717.1140,N,00833.9152,E,1.0,90.0,010630,,,A\r\n");
    junk += &bad_sum[..bad_sum.len() - 4];
    junk += "00\r\n";
    junk += &sentence("GPRMC,120000.00,V,,,,,,,010630,,,N");
    junk += &sentence("GPRMC,120000.00,A,4717.1140,N,00833.9152,E,1.0,90.0,151111,,,A");
    junk += &sentence("GPRMC,120000.00,A,47x7.1140,N,00833.9152,E,1.0,90.0,010630,,,A");
    // Blackbox flushes what was queued before it listened: keep writing until it has the fix.
    let (lat, lon, knots) = (47.285233, 8.565253, 54.0);
    let t = Instant::now();
    let mut ready = false;
    while !ready {
        assert!(t.elapsed() < Duration::from_secs(30), "no fix from the pty: {}\n{}", gps(&bb), bb.stderr());
        write_all(&m, &junk);
        feed(&m, lat, lon, knots, 2, || false);
        let g = gps(&bb);
        ready = g["state"] == "fix" && g["clock"] != "waiting" && g["bad_dates"].as_u64().unwrap_or(0) > 0;
    }
    let g = gps(&bb);
    assert_eq!(g["device"], link.display().to_string(), "{g}");
    let f = &g["fix"];
    assert!((f["lat"].as_f64().unwrap() - lat).abs() < 1e-5 && (f["lon"].as_f64().unwrap() - lon).abs() < 1e-5, "{g}");
    assert!((f["speed_kmh"].as_f64().unwrap() - 100.0).abs() < 0.1, "54 knots: {g}");
    assert_eq!((f["altitude_m"].as_f64(), g["satellites"].as_u64()), (Some(123.4), Some(9)), "{g}");
    assert!(f["time"].as_str().unwrap().starts_with("2030-06-01T12:"), "{g}");
    assert!(g["track_points"].as_u64().unwrap() >= 2 && g["track_errors"] == 0, "{g}");
    for k in ["bad_checksum", "void_fixes", "bad_dates", "bad_fields"] {
        assert!(g[k].as_u64().unwrap() >= 1, "{k} not counted: {g}");
    }
    // 2030 against today's clock: found, not set (BLACKBOX_CLOCK_READONLY=1).
    assert_eq!(g["clock"], "not allowed", "{g}");
    let off = g["clock_offset_s"].as_f64().unwrap();
    let want = (1_906_545_600 - std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64) as f64;
    assert!((off - want).abs() < 400.0, "offset {off} s, expected about {want} s (2030-06-01T12:00Z - now)");
    assert!(bb.stderr().contains("may not set it"), "{}", bb.stderr());

    // The track, one point a second, as GPX through the API; gpxpy (PyPI) must read it.
    let (code, gpx) = bb.http("GET", "/api/export.gpx", "").unwrap();
    assert_eq!(code, 200, "{gpx}");
    let (n, last) = gpxpy(&gpx, d.path());
    assert!(n >= 2, "{n} points: {gpx}");
    let v: Vec<f64> = last.split(' ').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
    assert!((v[0] - lat).abs() < 1e-5 && (v[1] - lon).abs() < 1e-5 && (v[2] - 123.4).abs() < 0.05, "{last}");
    assert!((v[3] - 27.78).abs() < 0.02, "speed 54 knots = 27.78 m/s: {last}");
    assert!(v[4] >= 1_906_545_600.0 && v[4] < 1_906_545_700.0, "time in 2030-06-01T12:00Z: {last}");
    let (code, body) = bb.http("GET", "/api/export.gpx?from=2031-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", "").unwrap();
    assert_eq!((code, body.contains("<trkseg>")), (200, false), "a reversed range holds no points: {body}");
    let (code, body) = bb.http("GET", "/api/export.gpx?from=yesterday", "").unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, none) = bb.http("GET", "/api/export.gpx?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", "").unwrap();
    assert_eq!((code, none.contains("<trkseg>")), (200, false), "no points in 2020: {none}");

    // Unplugged: the master closes (the slave reads EIO), the link points nowhere.
    drop(m);
    std::fs::remove_file(&link).unwrap();
    bb.wait(15, "the receiver lost", |b| gps(b)["state"] == "lost");
    // Plugged in again (a new tty behind the same name): found again, the new position shows.
    let (m2, slave2) = pty();
    std::os::unix::fs::symlink(&slave2, &link).unwrap();
    let (lat2, lon2) = (-33.8568, 151.2153);
    let t = Instant::now();
    loop {
        feed(&m2, lat2, lon2, 0.0, 1, || false);
        let g = gps(&bb);
        if g["state"] == "fix" && (g["fix"]["lat"].as_f64().unwrap_or(0.0) - lat2).abs() < 1e-5 {
            assert!((g["fix"]["lon"].as_f64().unwrap() - lon2).abs() < 1e-5, "{g}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "not found again: {g}\n{}", bb.stderr());
    }
    assert!(bb.stderr().contains("looking for the receiver again"), "{}", bb.stderr());
    // Recording never stopped.
    assert_eq!(bb.json("/api/status")["recording"], true);
    bb.stop();
    // The command line: the same track, both positions.
    let out = d.path().join("track.gpx");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_blackbox")).arg("export").arg(d.path().join("data")).args(["--gpx", "-o"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gpx = std::fs::read_to_string(&out).unwrap();
    let (n2, _) = gpxpy(&gpx, d.path());
    assert!(n2 > n, "{n2} points after the replug, {n} before");
    assert!(gpx.contains("lat=\"-33.85"), "the second position: {gpx}");
}

/// Parses `gpx` with gpxpy: (points, "lat lon ele speed unix_time" of the last).
fn gpxpy(gpx: &str, dir: &std::path::Path) -> (usize, String) {
    let py = std::env::var("BLACKBOX_GPS_PYTHON").map(std::path::PathBuf::from).unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gps-venv/bin/python"));
    assert!(py.exists(), "gpxpy is needed: scripts/test installs it into target/gps-venv (or set BLACKBOX_GPS_PYTHON)");
    let f = dir.join("check.gpx");
    std::fs::write(&f, gpx).unwrap();
    let script = r#"
import sys, gpxpy
g = gpxpy.parse(open(sys.argv[1]))
pts = [p for t in g.tracks for s in t.segments for p in s.points]
p = pts[-1]
speed = next(c.text for c in p.extensions[0] if c.tag.endswith('speed'))
print(len(pts), p.latitude, p.longitude, p.elevation, speed, p.time.timestamp())
"#;
    let o = std::process::Command::new(py).args(["-c", script]).arg(&f).output().unwrap();
    assert!(o.status.success(), "gpxpy refused it: {}\n{gpx}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    let (n, rest) = s.trim().split_once(' ').unwrap();
    (n.parse().unwrap(), rest.to_string())
}

/// RMC + GGA for the UTC time `utc_ns`.
fn fix_at(utc_ns: i64, lat: f64, lon: f64, knots: f64) -> String {
    let iso = blackbox::clock::Iso(utc_ns).to_string(); // 2026-12-05T20:01:02.345Z
    let (y, mo, d) = (&iso[2..4], &iso[5..7], &iso[8..10]);
    let hms = format!("{}{}{}.{}", &iso[11..13], &iso[14..16], &iso[17..19], &iso[20..22]);
    sentence(&format!("GPRMC,{hms},A,{},{},{knots:.1},45.0,{d}{mo}{y},,,A", coord(lat, true), coord(lon, false)))
        + &sentence(&format!("GPGGA,{hms},{},{},1,07,1.1,50.0,M,47.0,M,,", coord(lat, true), coord(lon, false)))
}

/// The subtitles of an export carry the speed and the position of the GPS track at the time
/// of each second of footage (ffmpeg reads them back); the clock agrees with GPS time here, so
/// it is left alone.
#[test]
fn the_export_subtitles_carry_speed_and_position() {
    let d = tempfile::tempdir().unwrap();
    let (m, slave) = pty();
    let bb = Run::start_with(d.path(), &format!(r#""gps_device": "{slave}""#));
    let (lat, lon) = (51.50101, -0.14159);
    let t = Instant::now();
    let mut first: Option<i64> = None;
    loop {
        let now = blackbox::clock::now_utc_ns();
        first.get_or_insert(now);
        write_all(&m, &fix_at(now, lat, lon, 27.0));
        std::thread::sleep(Duration::from_millis(200));
        if t.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let g = bb.json("/api/status")["gps"].clone();
    assert_eq!((g["state"].as_str(), g["clock"].as_str()), (Some("fix"), Some("right")), "{g}");
    let iso = |t: i64| blackbox::clock::Iso(t).to_string();
    let (from, to) = (first.unwrap() + 2_000_000_000, blackbox::clock::now_utc_ns() - 500_000_000);
    let (code, _) = bb.http("GET", &format!("/api/export.json?from={}&to={}", iso(from), iso(to)), "").unwrap();
    assert_eq!(code, 200);
    // The MP4 through the API, to a file; ffmpeg converts its text track to SRT.
    let mp4 = d.path().join("clip.mp4");
    let o = std::process::Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(&mp4)
        .args(["-H", &format!("Authorization: Bearer {}", std::fs::read_to_string(d.path().join("data/secret")).unwrap().trim())])
        .arg(format!("http://{}/api/export.mp4?from={}&to={}", bb.addr(), iso(from), iso(to)))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&mp4).args(["-map", "0:s:0", "-f", "srt", "-"]).output().expect("ffmpeg (scripts/test installs it)");
    let srt = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(srt.contains("UTC · 50 km/h · 51.50101° N, 0.14159° W"), "27 knots = 50 km/h at the fed position:\n{srt}");
}
