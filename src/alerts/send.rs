//! Delivering one alert: a webhook POST (generic JSON, ntfy, Discord, Slack) over the offload
//! HTTP client, and e-mail by SMTP submission (STARTTLS, TLS or plain; AUTH PLAIN or LOGIN),
//! a small hand-written dialogue over the same TLS stack.

use super::outbox::Alert;
use super::settings::{split_url, smtp_addr, AlertSettings, Format, Security};
use crate::json_str::JsonStr;
use crate::offload::http::{self, RateLimit};
use crate::offload::sigv4::base64;
use crate::offload::tls::{self, ClockOffset};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Kinds that wake people up (ntfy priority high).
fn urgent(kind: &str) -> bool {
    matches!(kind, "event" | "camera_lost" | "store_error" | "disk_full" | "lost_before_offload" | "restarted")
}

fn tls_config(st: &AlertSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    tls::client_config(st.ca_file().as_deref(), Arc::new(ClockOffset::default()))
}

/// POSTs `a` to the webhook.
pub fn webhook(st: &AlertSettings, a: &Alert, device: &str) -> Result<(), String> {
    let (ep, path) = split_url(&st.webhook_url)?;
    let cfg = if ep.tls { Some(tls_config(st)?) } else { None };
    let time = crate::clock::Iso(a.utc_ns).to_string();
    let id = a.id.to_string();
    let text = if a.body.is_empty() { a.title.clone() } else { format!("{}\n{}", a.title, a.body) };
    let (body, ctype, mut extra): (String, &str, Vec<(&str, String)>) = match st.webhook_format {
        Format::Json => (
            format!(
                "{{\"id\":{},\"kind\":{},\"time\":\"{time}\",\"title\":{},\"message\":{},\"device\":{}}}",
                a.id,
                JsonStr(&a.kind),
                JsonStr(&a.title),
                JsonStr(&a.body),
                JsonStr(device)
            ),
            "application/json",
            Vec::new(),
        ),
        Format::Ntfy => (
            format!("{}\n{time} · {device}", if a.body.is_empty() { &a.title } else { &a.body }),
            "text/plain; charset=utf-8",
            vec![
                ("Title", format!("blackbox {device}: {}", a.title).chars().filter(|c| c.is_ascii() && !c.is_control()).collect()),
                ("Priority", if urgent(&a.kind) { "high" } else { "default" }.to_string()),
                ("Tags", if urgent(&a.kind) { "rotating_light" } else { "information_source" }.to_string()),
            ],
        ),
        Format::Discord => (format!("{{\"content\":{}}}", JsonStr(&format!("**blackbox {device}**: {text}"))), "application/json", Vec::new()),
        Format::Slack => (format!("{{\"text\":{}}}", JsonStr(&format!("*blackbox {device}*: {text}"))), "application/json", Vec::new()),
    };
    extra.push(("X-Blackbox-Alert-Id", id));
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", ctype)];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    let r = http::send(&ep, cfg.as_ref(), "POST", &path, &headers, body.as_bytes(), &mut RateLimit::new(0), TIMEOUT)
        .map_err(|e| tls::explain(&e).unwrap_or_else(|| e.to_string()))?;
    if r.status / 100 != 2 {
        return Err(format!("webhook answered {}: {}", r.status, r.body_text().chars().take(200).collect::<String>()));
    }
    Ok(())
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

struct Smtp {
    s: Box<dyn Stream>,
}

impl Smtp {
    /// Reads one reply (all its lines); returns the code and the text.
    fn reply(&mut self) -> Result<(u16, String), String> {
        let mut all = String::new();
        loop {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            loop {
                let n = self.s.read(&mut b).map_err(|e| tls::explain(&e).unwrap_or_else(|| format!("mail server: {e}")))?;
                if n == 0 {
                    return Err("the mail server closed the connection".into());
                }
                if b[0] == b'\n' {
                    break;
                }
                if line.len() < 2048 {
                    line.push(b[0]);
                }
            }
            let l = String::from_utf8_lossy(&line).trim_end().to_string();
            if l.len() < 3 {
                return Err(format!("mail server: bad reply {l:?}"));
            }
            let code: u16 = l[..3].parse().map_err(|_| format!("mail server: bad reply {l:?}"))?;
            all.push_str(l.get(4..).unwrap_or(""));
            all.push('\n');
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, all));
            }
        }
    }

    fn cmd(&mut self, line: &str, want: &[u16], what: &str) -> Result<String, String> {
        self.s
            .write_all(line.as_bytes())
            .and_then(|_| self.s.write_all(b"\r\n"))
            .and_then(|_| self.s.flush())
            .map_err(|e| tls::explain(&e).unwrap_or_else(|| format!("mail server: {e}")))?;
        let (code, text) = self.reply()?;
        if !want.contains(&code) {
            return Err(format!("mail server refused {what}: {code} {}", text.trim()));
        }
        Ok(text)
    }
}

fn tls_wrap(tcp: TcpStream, host: &str, cfg: &Arc<rustls::ClientConfig>) -> Result<Box<dyn Stream>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let c = rustls::ClientConnection::new(Arc::clone(cfg), name).map_err(|e| e.to_string())?;
    Ok(Box::new(rustls::StreamOwned::new(c, tcp)))
}

/// RFC 5322 date: `Sat, 05 Dec 2026 15:30:00 +0000`.
fn mail_date(utc_ns: i64) -> String {
    let iso = crate::clock::Iso(utc_ns).to_string(); // 2026-12-05T15:30:00.000Z
    let days = utc_ns.div_euclid(86_400_000_000_000);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m: usize = iso.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    format!("{}, {} {} {} {} +0000", WD[days.rem_euclid(7) as usize], iso.get(8..10).unwrap_or("01"), MO[(m.clamp(1, 12)) - 1], iso.get(0..4).unwrap_or("1970"), iso.get(11..19).unwrap_or("00:00:00"))
}

/// The message, dot-stuffed, CRLF line ends, ending with `CRLF.CRLF`.
fn message(st: &AlertSettings, a: &Alert, device: &str) -> String {
    let to: Vec<&str> = st.smtp_to.split(',').map(str::trim).collect();
    let subject: String = format!("[blackbox {device}] {}", a.title).chars().filter(|c| !c.is_control()).collect();
    // Non-ASCII subjects: RFC 2047 base64 word.
    let subject = if subject.is_ascii() { subject } else { format!("=?UTF-8?B?{}?=", base64(subject.as_bytes())) };
    let mut m = format!(
        "From: blackbox {device} <{}>\r\nTo: {}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <alert-{}.{device}@blackbox>\r\nX-Blackbox-Alert-Id: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        st.smtp_from,
        to.join(", "),
        mail_date(a.utc_ns),
        a.id,
        a.id
    );
    let body = format!("{}\n\n{}\nTime: {} (UTC)\nDevice: {device}\nKind: {}\nAlert id: {}\n", a.title, a.body, crate::clock::Iso(a.utc_ns), a.kind, a.id);
    for line in body.lines() {
        if line.starts_with('.') {
            m.push('.');
        }
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.push('.');
    m
}

/// Sends `a` by e-mail.
pub fn email(st: &AlertSettings, a: &Alert, device: &str) -> Result<(), String> {
    let (host, port) = smtp_addr(&st.smtp_server)?;
    let addr = (host.as_str(), port).to_socket_addrs().map_err(|e| format!("{host}: {e}"))?.next().ok_or_else(|| format!("{host}: no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot reach the mail server {}: {e}", st.smtp_server))?;
    let _ = tcp.set_read_timeout(Some(TIMEOUT));
    let _ = tcp.set_write_timeout(Some(TIMEOUT));
    let cfg = if st.smtp_security == Security::None { None } else { Some(tls_config(st)?) };
    let s: Box<dyn Stream> = match (&st.smtp_security, &cfg) {
        (Security::Tls, Some(c)) => tls_wrap(tcp.try_clone().map_err(|e| e.to_string())?, &host, c)?,
        _ => Box::new(tcp.try_clone().map_err(|e| e.to_string())?),
    };
    let mut c = Smtp { s };
    let (code, text) = c.reply()?;
    if code != 220 {
        return Err(format!("mail server greeting: {code} {}", text.trim()));
    }
    let ehlo = format!("EHLO {}", device.replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '-', "-"));
    let mut caps = c.cmd(&ehlo, &[250], "EHLO")?;
    if st.smtp_security == Security::Starttls {
        if !caps.lines().any(|l| l.trim().eq_ignore_ascii_case("STARTTLS")) {
            return Err("the mail server does not offer STARTTLS: set smtp_security to tls (port 465) or none".into());
        }
        c.cmd("STARTTLS", &[220], "STARTTLS")?;
        let cfg = cfg.as_ref().ok_or("no TLS configuration")?;
        c = Smtp { s: tls_wrap(tcp, &host, cfg)? };
        caps = c.cmd(&ehlo, &[250], "EHLO after STARTTLS")?;
    }
    if !st.smtp_user.is_empty() {
        let auth = caps.lines().find(|l| l.to_ascii_uppercase().starts_with("AUTH")).unwrap_or("").to_ascii_uppercase();
        if auth.contains("PLAIN") || !auth.contains("LOGIN") {
            let token = base64(format!("\0{}\0{}", st.smtp_user, st.smtp_password).as_bytes());
            c.cmd(&format!("AUTH PLAIN {token}"), &[235], "the user name or password (AUTH)")?;
        } else {
            c.cmd("AUTH LOGIN", &[334], "AUTH LOGIN")?;
            c.cmd(&base64(st.smtp_user.as_bytes()), &[334], "the user name")?;
            c.cmd(&base64(st.smtp_password.as_bytes()), &[235], "the user name or password (AUTH)")?;
        }
    }
    c.cmd(&format!("MAIL FROM:<{}>", st.smtp_from), &[250], "the sender")?;
    for to in st.smtp_to.split(',').map(str::trim) {
        c.cmd(&format!("RCPT TO:<{to}>"), &[250, 251], "the recipient")?;
    }
    c.cmd("DATA", &[354], "DATA")?;
    c.cmd(&message(st, a, device), &[250], "the message")?;
    let _ = c.cmd("QUIT", &[221], "QUIT");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_messages() {
        assert_eq!(mail_date(1_369_353_600_000_000_000), "Fri, 24 May 2013 00:00:00 +0000");
        assert_eq!(mail_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        let st = AlertSettings { smtp_from: "cam@x.org".into(), smtp_to: "a@x.org, b@y.org".into(), ..AlertSettings::defaults() };
        let a = Alert { id: 7, utc_ns: 0, kind: "event".into(), title: "Impact 6.1 g".into(), body: ".hidden line".into(), sent: vec![] };
        let m = message(&st, &a, "car1");
        assert!(m.contains("To: a@x.org, b@y.org\r\n") && m.contains("Message-ID: <alert-7.car1@blackbox>"), "{m}");
        assert!(m.contains("\r\n..hidden line\r\n"), "dot-stuffed: {m}");
        assert!(m.ends_with("\r\n."));
        let a = Alert { title: "Stoß".into(), ..a };
        assert!(message(&st, &a, "car1").contains("Subject: =?UTF-8?B?"));
    }
}
