//! `rtsp://[user[:password]@]host[:port][/path]` as a camera's source: split into its parts,
//! the password kept apart so it is never logged or shown ([`Url::to_string_hidden`]).

/// A parsed `rtsp://` URL. `user` and `password` are as written (percent-encoded);
/// [`Url::credentials`] decodes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub user: Option<String>,
    pub password: Option<String>,
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// From the first `/` after the host (`/` when none), query included.
    pub path: String,
}

pub const DEFAULT_PORT: u16 = 554;

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let rest = s.strip_prefix("rtsp://").ok_or_else(|| "an RTSP URL starts with rtsp://".to_string())?;
        if rest.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
            return Err("an RTSP URL is printable ASCII without spaces".into());
        }
        let (auth_host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match auth_host.rfind('@') {
            Some(i) => (Some(&auth_host[..i]), &auth_host[i + 1..]),
            None => (None, auth_host),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
                None => (Some(u.to_string()), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("an IPv6 host is written [addr]")?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("an RTSP URL needs a host (rtsp://host/path)".into());
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("{p:?} is not a port"))?,
        };
        for (what, v) in [("user", &user), ("password", &password)] {
            if let Some(v) = v
                && percent_decode(v).is_none()
            {
                return Err(format!("the {what} has a bad %-escape"));
            }
        }
        Ok(Url { user, password, host: host.to_string(), port, path: path.to_string() })
    }

    /// The decoded user name and password (empty when absent).
    pub fn credentials(&self) -> Option<(String, String)> {
        let user = percent_decode(self.user.as_deref()?)?;
        let pass = self.password.as_deref().map(percent_decode).unwrap_or(Some(String::new()))?;
        Some((user, pass))
    }

    fn host_port(&self) -> String {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == DEFAULT_PORT { h } else { format!("{h}:{}", self.port) }
    }

    /// The URL without user and password: what requests carry and logs show.
    pub fn bare(&self) -> String {
        format!("rtsp://{}{}", self.host_port(), self.path)
    }

    /// The URL with the password (if any) replaced by `hidden`.
    pub fn to_string_hidden(&self, hidden: &str) -> String {
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => format!("rtsp://{u}:{hidden}@{}{}", self.host_port(), self.path),
            (Some(u), None) => format!("rtsp://{u}@{}{}", self.host_port(), self.path),
            _ => self.bare(),
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = core::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_hide_their_password() {
        let u = Url::parse("rtsp://ad%40m:p%3Ass@cam.local:8554/live/1?x=2").unwrap();
        assert_eq!(u.host, "cam.local");
        assert_eq!(u.port, 8554);
        assert_eq!(u.path, "/live/1?x=2");
        assert_eq!(u.credentials().unwrap(), ("ad@m".to_string(), "p:ss".to_string()));
        assert_eq!(u.bare(), "rtsp://cam.local:8554/live/1?x=2");
        assert_eq!(u.to_string_hidden("***"), "rtsp://ad%40m:***@cam.local:8554/live/1?x=2");
        let v = Url::parse("rtsp://[::1]/s").unwrap();
        assert_eq!((v.host.as_str(), v.port, v.credentials()), ("::1", 554, None));
        assert_eq!(v.bare(), "rtsp://[::1]/s");
        assert_eq!(Url::parse("rtsp://h").unwrap().path, "/");
        for bad in ["http://h/", "rtsp://", "rtsp://h:0/", "rtsp://h:x/", "rtsp://u:%zz@h/", "rtsp://h /", "rtsp://[::1/"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
