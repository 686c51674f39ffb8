//! Alert channels: `DATA/alerts.conf` (mode 0600, `key=value`, `#` comments; the SMTP password
//! is never returned by the API). docs/CONFIG.md, "Alerts".

use crate::offload::http::Endpoint;
use std::fmt::Write as _;
use std::path::Path;

pub const FILE: &str = "alerts.conf";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// `{"id","kind","time","title","message","device"}`
    #[default]
    Json,
    /// ntfy: the message as the body, `Title`, `Priority`, `Tags` headers.
    Ntfy,
    /// Discord: `{"content": "..."}`.
    Discord,
    /// Slack: `{"text": "..."}`.
    Slack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Security {
    /// SMTP submission (587) upgraded with STARTTLS; refused if the server doesn't offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (465).
    Tls,
    /// No encryption (a relay on the home network; the password, if any, goes in the clear).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AlertSettings {
    pub webhook_url: String,
    pub webhook_format: Format,
    pub smtp_server: String,
    pub smtp_security: Security,
    pub smtp_user: String,
    pub smtp_password: String,
    pub smtp_from: String,
    pub smtp_to: String,
    /// Trust only this CA for the webhook's and the mail server's TLS (PEM file).
    pub alerts_ca_file: String,
    /// The camera lost for longer than this raises an alert.
    pub alert_camera_lost_s: u32,
}

pub const KEYS: &[&str] = &[
    "webhook_url",
    "webhook_format",
    "smtp_server",
    "smtp_security",
    "smtp_user",
    "smtp_password",
    "smtp_from",
    "smtp_to",
    "alerts_ca_file",
    "alert_camera_lost_s",
];

/// `scheme://host[:port]/path?query` → the endpoint and the path with its query.
pub fn split_url(url: &str) -> Result<(Endpoint, String), String> {
    let after = url.find("://").map(|i| i + 3).ok_or_else(|| format!("{url:?}: not an http:// or https:// URL"))?;
    let (base, path) = match url[after..].find(['/', '?']) {
        Some(i) => (&url[..after + i], &url[after + i..]),
        None => (url, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    if path.bytes().any(|b| !(0x21..0x7f).contains(&b)) || path.contains('#') {
        return Err(format!("{url:?}: the path must be printable ASCII without spaces or '#' (percent-encode it)"));
    }
    Ok((Endpoint::parse(base)?, path))
}

/// `host:port` of the mail server.
pub fn smtp_addr(s: &str) -> Result<(String, u16), String> {
    let (h, p) = s.rsplit_once(':').ok_or("smtp_server: host:port, e.g. smtp.example.com:587")?;
    let p: u16 = p.parse().ok().filter(|&p| p > 0).ok_or("smtp_server: bad port")?;
    if h.is_empty() || h.len() > 253 || !h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')) {
        return Err("smtp_server: host:port, e.g. smtp.example.com:587".into());
    }
    Ok((h.trim_start_matches('[').trim_end_matches(']').to_string(), p))
}

fn address_ok(s: &str) -> bool {
    s.len() <= 254 && s.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()) && s.bytes().all(|b| (0x21..0x7f).contains(&b) && !matches!(b, b'<' | b'>' | b',' | b'"'))
}

impl AlertSettings {
    pub fn defaults() -> AlertSettings {
        AlertSettings { alert_camera_lost_s: 60, ..AlertSettings::default() }
    }

    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        let v = v.trim();
        match key {
            "webhook_url" => self.webhook_url = v.into(),
            "webhook_format" => {
                self.webhook_format = match v {
                    "json" => Format::Json,
                    "ntfy" => Format::Ntfy,
                    "discord" => Format::Discord,
                    "slack" => Format::Slack,
                    _ => return Err("webhook_format: json, ntfy, discord or slack".into()),
                }
            }
            "smtp_server" => self.smtp_server = v.into(),
            "smtp_security" => {
                self.smtp_security = match v {
                    "starttls" => Security::Starttls,
                    "tls" => Security::Tls,
                    "none" => Security::None,
                    _ => return Err("smtp_security: starttls, tls or none".into()),
                }
            }
            "smtp_user" => self.smtp_user = v.into(),
            "smtp_password" => self.smtp_password = v.into(),
            "smtp_from" => self.smtp_from = v.into(),
            "smtp_to" => self.smtp_to = v.into(),
            "alerts_ca_file" => self.alerts_ca_file = v.into(),
            "alert_camera_lost_s" => self.alert_camera_lost_s = v.parse().ok().filter(|&s: &u32| (5..=86_400).contains(&s)).ok_or("alert_camera_lost_s: 5 to 86400 seconds")?,
            _ => return Err(format!("{key}: not an alert setting (known: {})", KEYS.join(", "))),
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.webhook_url.is_empty() {
            split_url(&self.webhook_url).map_err(|e| format!("webhook_url: {e}"))?;
        }
        if !self.smtp_server.is_empty() {
            smtp_addr(&self.smtp_server)?;
            if !address_ok(&self.smtp_from) {
                return Err("smtp_from: the sender's address, e.g. dashcam@example.com".into());
            }
            if self.smtp_to.split(',').any(|a| !address_ok(a.trim())) {
                return Err("smtp_to: one or more addresses, separated by commas".into());
            }
        }
        for (k, v) in [("smtp_user", &self.smtp_user), ("smtp_password", &self.smtp_password)] {
            if v.len() > 256 || v.chars().any(char::is_control) {
                return Err(format!("{k}: up to 256 characters"));
            }
        }
        if !self.alerts_ca_file.is_empty() && (!self.alerts_ca_file.starts_with('/') || self.alerts_ca_file.len() > 256 || self.alerts_ca_file.contains(' ')) {
            return Err("alerts_ca_file: an absolute path to a PEM file".into());
        }
        Ok(())
    }

    pub fn parse(text: &str) -> Result<AlertSettings, String> {
        let mut s = AlertSettings::defaults();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: expected key=value", n + 1))?;
            s.set(k.trim(), v).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        s.validate()?;
        Ok(s)
    }

    pub fn load(data: &Path) -> Result<AlertSettings, String> {
        let path = data.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => AlertSettings::parse(&t).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AlertSettings::defaults()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn format_name(&self) -> &'static str {
        match self.webhook_format {
            Format::Json => "json",
            Format::Ntfy => "ntfy",
            Format::Discord => "discord",
            Format::Slack => "slack",
        }
    }

    pub fn security_name(&self) -> &'static str {
        match self.smtp_security {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }

    pub fn to_text(&self) -> String {
        let mut t = String::from("# blackbox alert channels (docs/CONFIG.md, \"Alerts\"); mode 0600: holds the mail password\n");
        for (k, v) in [
            ("webhook_url", self.webhook_url.as_str()),
            ("webhook_format", self.format_name()),
            ("smtp_server", &self.smtp_server),
            ("smtp_security", self.security_name()),
            ("smtp_user", &self.smtp_user),
            ("smtp_password", &self.smtp_password),
            ("smtp_from", &self.smtp_from),
            ("smtp_to", &self.smtp_to),
            ("alerts_ca_file", &self.alerts_ca_file),
        ] {
            let _ = writeln!(t, "{k}={v}");
        }
        let _ = writeln!(t, "alert_camera_lost_s={}", self.alert_camera_lost_s);
        t
    }

    pub fn save(&self, data: &Path) -> std::io::Result<()> {
        crate::config::write_atomic_mode(&data.join(FILE), self.to_text().as_bytes(), 0o600)
    }

    /// The channels configured, by name.
    pub fn channels(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if !self.webhook_url.is_empty() {
            c.push("webhook");
        }
        if !self.smtp_server.is_empty() {
            c.push("email");
        }
        c
    }

    pub fn ca_file(&self) -> Option<std::path::PathBuf> {
        (!self.alerts_ca_file.is_empty()).then(|| std::path::PathBuf::from(&self.alerts_ca_file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_check() {
        let s = AlertSettings::parse("webhook_url=https://ntfy.sh/my-car\nwebhook_format=ntfy\nsmtp_server=127.0.0.1:2525\nsmtp_security=none\nsmtp_from=cam@x.org\nsmtp_to=me@x.org, you@y.org\n").unwrap();
        assert_eq!(s.channels(), vec!["webhook", "email"]);
        assert_eq!(AlertSettings::parse(&s.to_text()).unwrap(), s);
        let (ep, path) = split_url("https://ntfy.sh/my-car?x=1").unwrap();
        assert_eq!((ep.host.as_str(), ep.port, path.as_str()), ("ntfy.sh", 443, "/my-car?x=1"));
        assert_eq!(split_url("http://127.0.0.1:9000").unwrap().1, "/");
        for (bad, what) in [
            ("webhook_url=ftp://x", "webhook_url"),
            ("webhook_url=http://h/a b", "webhook_url"),
            ("smtp_server=mail", "smtp_server"),
            ("smtp_server=m:25\nsmtp_from=nobody", "smtp_from"),
            ("smtp_server=m:25\nsmtp_from=a@b\nsmtp_to=x@y,", "smtp_to"),
            ("webhook_format=xml", "webhook_format"),
            ("alert_camera_lost_s=1", "alert_camera_lost_s"),
        ] {
            let e = AlertSettings::parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad}: {e}");
        }
        assert!(AlertSettings::parse("").unwrap().channels().is_empty());
    }
}
