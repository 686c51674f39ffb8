//! Offload settings: `DATA/offload.conf` (mode 0600, `key=value` lines, `#` comments), kept
//! apart from `config.json` because it holds a secret key that the API never returns
//! (docs/CONFIG.md, "Offload").

use std::fmt::Write as _;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Off,
    /// Protected footage (events, Save incident, protected ranges) only.
    Events,
    /// Everything; protected footage first. Needs constant power to keep up.
    All,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Events => "events",
            Mode::All => "all",
        }
    }
    fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "events" => Some(Mode::Events),
            "all" => Some(Mode::All),
            _ => None,
        }
    }
}

/// Where copies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    S3,
    /// A NAS by the rsync program (daemon or SSH).
    Rsync,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    pub mode: Mode,
    pub target: Target,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_prefix: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
    /// Plain `http://` endpoints are refused unless this is set (a trusted home network).
    pub s3_allow_http: bool,
    /// For https: trust only this CA (PEM file), not the system's bundle (a NAS's own CA).
    pub s3_ca_file: String,
    /// Upload bandwidth limit in kbit/s; 0: none.
    pub offload_kbps: u32,
    /// The device's folder under the prefix.
    pub device_name: String,
    /// rsync: `rsync://[user@]host[:port]/module[/path]` or `[user@]host:path`.
    pub rsync_dest: String,
    /// rsync daemon: the module user's password (RSYNC_PASSWORD).
    pub rsync_password: String,
    /// rsync over SSH: the private key file and the port.
    pub rsync_ssh_key: String,
    pub rsync_ssh_port: u16,
    /// Where SSH keeps the NAS's host key (set at run time: DATA/offload/known_hosts).
    pub rsync_known_hosts: String,
}

pub const FILE: &str = "offload.conf";

/// Every key, in file order.
pub const KEYS: &[&str] = &[
    "offload",
    "offload_target",
    "s3_endpoint",
    "s3_bucket",
    "s3_region",
    "s3_prefix",
    "s3_access_key",
    "s3_secret_key",
    "s3_allow_http",
    "s3_ca_file",
    "offload_kbps",
    "device_name",
    "rsync_dest",
    "rsync_password",
    "rsync_ssh_key",
    "rsync_ssh_port",
];

fn default_device() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim();
    if check_device(h).is_ok() { h.to_string() } else { "blackbox".to_string() }
}

fn check_device(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) || s.starts_with('.') {
        return Err("device_name: 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.')".into());
    }
    Ok(())
}

impl Settings {
    pub fn defaults() -> Settings {
        Settings { s3_region: "us-east-1".into(), s3_prefix: "blackbox".into(), device_name: default_device(), rsync_ssh_port: 22, ..Settings::default() }
    }

    /// Sets one key from its text; the error names the key and what it takes.
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        let v = v.trim();
        match key {
            "offload" => self.mode = Mode::parse(v).ok_or("offload: off, events or all")?,
            "s3_endpoint" => self.s3_endpoint = v.to_string(),
            "s3_bucket" => self.s3_bucket = v.to_string(),
            "s3_region" => self.s3_region = v.to_string(),
            "s3_prefix" => self.s3_prefix = v.trim_matches('/').to_string(),
            "s3_access_key" => self.s3_access_key = v.to_string(),
            "s3_secret_key" => self.s3_secret_key = v.to_string(),
            "s3_allow_http" => {
                self.s3_allow_http = match v {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err("s3_allow_http: true or false".into()),
                }
            }
            "s3_ca_file" => self.s3_ca_file = v.to_string(),
            "offload_kbps" => self.offload_kbps = v.parse().ok().filter(|&k: &u32| k <= 10_000_000).ok_or("offload_kbps: a whole number of kbit/s, 0 for no limit")?,
            "device_name" => self.device_name = v.to_string(),
            "offload_target" => {
                self.target = match v {
                    "s3" => Target::S3,
                    "rsync" => Target::Rsync,
                    _ => return Err("offload_target: s3 or rsync".into()),
                }
            }
            "rsync_dest" => self.rsync_dest = v.to_string(),
            "rsync_password" => self.rsync_password = v.to_string(),
            "rsync_ssh_key" => self.rsync_ssh_key = v.to_string(),
            "rsync_ssh_port" => self.rsync_ssh_port = v.parse().ok().filter(|&p: &u16| p > 0).ok_or("rsync_ssh_port: 1 to 65535")?,
            _ => return Err(format!("{key}: not an offload setting (known: {})", KEYS.join(", "))),
        }
        Ok(())
    }

    /// Reads `DATA/offload.conf`; a missing file is the defaults (offload off).
    pub fn load(data: &Path) -> Result<Settings, String> {
        let path = data.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::defaults()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Settings::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        let mut s = Settings::defaults();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: expected key=value", n + 1));
            };
            s.set(k.trim(), v).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks the settings as a whole (what an enabled offload needs).
    pub fn validate(&self) -> Result<(), String> {
        let printable = |s: &str| s.bytes().all(|b| (0x21..0x7f).contains(&b));
        check_device(&self.device_name)?;
        if self.s3_prefix.len() > 200 || !self.s3_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')) || self.s3_prefix.contains("//") {
            return Err("s3_prefix: up to 200 letters, digits, '-', '_', '.' and '/'".into());
        }
        if !self.s3_bucket.is_empty()
            && (self.s3_bucket.len() < 3 || self.s3_bucket.len() > 63 || !self.s3_bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'))
        {
            return Err("s3_bucket: 3 to 63 lower-case letters, digits, '-' or '.'".into());
        }
        if self.s3_region.is_empty() || self.s3_region.len() > 64 || !printable(&self.s3_region) {
            return Err("s3_region: e.g. us-east-1 (any name your server expects)".into());
        }
        for (k, v) in [("s3_access_key", &self.s3_access_key), ("s3_secret_key", &self.s3_secret_key)] {
            if v.len() > 256 || !printable(v) {
                return Err(format!("{k}: up to 256 printable characters without spaces"));
            }
        }
        if !self.s3_ca_file.is_empty() && (!self.s3_ca_file.starts_with('/') || self.s3_ca_file.len() > 256 || !printable(&self.s3_ca_file)) {
            return Err("s3_ca_file: an absolute path to a PEM file, at most 256 characters without spaces".into());
        }
        if !self.s3_endpoint.is_empty() {
            let ep = super::http::Endpoint::parse(&self.s3_endpoint).map_err(|e| format!("s3_endpoint: {e}"))?;
            if !ep.tls && !self.s3_allow_http {
                return Err("s3_endpoint: plain http:// sends footage and signed requests unencrypted; set s3_allow_http to true to allow it on a trusted network".into());
            }
        }
        if !self.rsync_dest.is_empty() {
            super::rsync::check_dest(&self.rsync_dest)?;
        }
        if !self.rsync_ssh_key.is_empty() && (!self.rsync_ssh_key.starts_with('/') || !printable(&self.rsync_ssh_key) || self.rsync_ssh_key.len() > 256) {
            return Err("rsync_ssh_key: an absolute path to the private key file".into());
        }
        if self.rsync_password.len() > 256 || self.rsync_password.chars().any(char::is_control) {
            return Err("rsync_password: up to 256 characters".into());
        }
        if self.mode != Mode::Off && self.target == Target::Rsync {
            if self.rsync_dest.is_empty() {
                return Err(format!("rsync_dest: needed to offload by rsync (offload is {})", self.mode.name()));
            }
            return Ok(());
        }
        if self.mode != Mode::Off {
            for (k, v) in [("s3_endpoint", &self.s3_endpoint), ("s3_bucket", &self.s3_bucket), ("s3_access_key", &self.s3_access_key), ("s3_secret_key", &self.s3_secret_key)] {
                if v.is_empty() {
                    return Err(format!("{k}: needed to offload (offload is {})", self.mode.name()));
                }
            }
        }
        Ok(())
    }

    pub fn to_text(&self) -> String {
        let mut t = String::from("# blackbox offload settings (docs/CONFIG.md, \"Offload\"); mode 0600: holds the secret key\n");
        let _ = writeln!(t, "offload={}", self.mode.name());
        let _ = writeln!(t, "offload_target={}", self.target_name());
        for (k, v) in [
            ("s3_endpoint", &self.s3_endpoint),
            ("s3_bucket", &self.s3_bucket),
            ("s3_region", &self.s3_region),
            ("s3_prefix", &self.s3_prefix),
            ("s3_access_key", &self.s3_access_key),
            ("s3_secret_key", &self.s3_secret_key),
        ] {
            let _ = writeln!(t, "{k}={v}");
        }
        let _ = writeln!(t, "s3_allow_http={}\ns3_ca_file={}\noffload_kbps={}\ndevice_name={}", self.s3_allow_http, self.s3_ca_file, self.offload_kbps, self.device_name);
        let _ = writeln!(t, "rsync_dest={}\nrsync_password={}\nrsync_ssh_key={}\nrsync_ssh_port={}", self.rsync_dest, self.rsync_password, self.rsync_ssh_key, self.rsync_ssh_port);
        t
    }

    /// The CA file for https, when one is set.
    pub fn ca_file(&self) -> Option<std::path::PathBuf> {
        (!self.s3_ca_file.is_empty()).then(|| std::path::PathBuf::from(&self.s3_ca_file))
    }

    pub fn save(&self, data: &Path) -> std::io::Result<()> {
        crate::config::write_atomic_mode(&data.join(FILE), self.to_text().as_bytes(), 0o600)
    }

    /// Where copies go, as the manifest names it: `s3://host/bucket/prefix` (a changed target
    /// means copies are made again there).
    pub fn target_id(&self) -> String {
        if self.target == Target::Rsync {
            return format!("rsync:{}", self.rsync_dest.trim_end_matches('/'));
        }
        let host = super::http::Endpoint::parse(&self.s3_endpoint).map(|e| e.host).unwrap_or_default();
        let t = format!("s3://{host}/{}/{}", self.s3_bucket, self.s3_prefix);
        t.trim_end_matches('/').replace(' ', "_")
    }

    /// The object key of a segment: `PREFIX/DEVICE/YYYY-MM-DD/NAME` (the day of its start, UTC).
    /// `PREFIX/DEVICE/YYYY-MM-DD/NAME` for the first camera's segment `name`, and
    /// `PREFIX/DEVICE/cameras/CAMERA/YYYY-MM-DD/NAME` for another camera's (the layout of the
    /// data dir).
    pub fn key_for(&self, camera: Option<&str>, name: &str, start_utc_ns: i64) -> String {
        format!("{}/{}", self.device_dir(), dated(camera, name, start_utc_ns))
    }

    pub fn target_name(&self) -> &'static str {
        match self.target {
            Target::S3 => "s3",
            Target::Rsync => "rsync",
        }
    }

    /// `DEVICE/YYYY-MM-DD/NAME` (or `DEVICE/cameras/CAMERA/YYYY-MM-DD/NAME`): where rsync puts
    /// a segment under `rsync_dest`.
    pub fn rsync_rel(&self, camera: Option<&str>, name: &str, start_utc_ns: i64) -> String {
        format!("{}/{}", self.device_name, dated(camera, name, start_utc_ns))
    }

    /// `PREFIX/DEVICE` (or `DEVICE` without a prefix).
    pub fn device_dir(&self) -> String {
        if self.s3_prefix.is_empty() { self.device_name.clone() } else { format!("{}/{}", self.s3_prefix, self.device_name) }
    }
}

/// `[cameras/CAMERA/]YYYY-MM-DD/NAME`.
fn dated(camera: Option<&str>, name: &str, start_utc_ns: i64) -> String {
    let iso = crate::clock::Iso(start_utc_ns).to_string();
    let day = &iso[..10.min(iso.len())];
    match camera {
        Some(c) => format!("cameras/{c}/{day}/{name}"),
        None => format!("{day}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> String {
        "offload=events\ns3_endpoint=http://127.0.0.1:8333\ns3_bucket=cam\ns3_access_key=AK\ns3_secret_key=SK\ns3_allow_http=true\ndevice_name=car1\n".into()
    }

    #[test]
    fn parse_validate_round_trip() {
        let s = Settings::parse(&good()).unwrap();
        assert_eq!((s.mode, s.s3_region.as_str(), s.s3_prefix.as_str()), (Mode::Events, "us-east-1", "blackbox"));
        assert_eq!(Settings::parse(&s.to_text()).unwrap(), s);
        assert_eq!(s.key_for(None, "20261205T101500.000Z_x.seg", 1_796_465_700_000_000_000), "blackbox/car1/2026-12-05/20261205T101500.000Z_x.seg");
        assert_eq!(
            s.key_for(Some("rear"), "20261205T101500.000Z_x.seg", 1_796_465_700_000_000_000),
            "blackbox/car1/cameras/rear/2026-12-05/20261205T101500.000Z_x.seg"
        );
        assert_eq!(s.rsync_rel(Some("rear"), "x.seg", 1_796_465_700_000_000_000), "car1/cameras/rear/2026-12-05/x.seg");
        assert_eq!(s.target_id(), "s3://127.0.0.1:8333/cam/blackbox");
        // plain http needs the flag
        let e = Settings::parse(&good().replace("s3_allow_http=true", "")).unwrap_err();
        assert!(e.contains("s3_allow_http"), "{e}");
        // an enabled offload needs its target
        let e = Settings::parse(&good().replace("s3_bucket=cam", "")).unwrap_err();
        assert!(e.contains("s3_bucket: needed"), "{e}");
        for (bad, what) in [("offload=sometimes", "offload:"), ("s3_bucket=A_B", "s3_bucket"), ("nonsense", "key=value"), ("s3_secret=x", "not an offload setting"), ("offload_kbps=-1", "offload_kbps"), ("device_name=../x", "device_name"), ("s3_endpoint=ftp://x", "s3_endpoint")] {
            let e = Settings::parse(&format!("{}{bad}\n", good())).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
        }
        // off needs nothing
        assert_eq!(Settings::parse("# nothing\n").unwrap().mode, Mode::Off);
    }
}
