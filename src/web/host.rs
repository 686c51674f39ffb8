//! Which `Host` headers the dashboard answers (DNS rebinding): only the device's own names and
//! addresses. Anything else gets 421 before any route runs, except the captive-portal probes
//! (their job is to answer whatever name the phone asked for, with a redirect).
//!
//! Served: `localhost`, the `--portal-host`, the machine's host name (also with `.local`), the
//! listen address, loopback addresses and the addresses of the machine's interfaces (read
//! with `getifaddrs(3)`, refreshed at most every [`REFRESH_S`] seconds so a DHCP change is
//! picked up).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How often the interface addresses are read again (when a Host needs them).
pub const REFRESH_S: u64 = 10;

pub struct Hosts {
    listen: IpAddr,
    names: Vec<String>,
    ifaddrs: RefCell<(Vec<IpAddr>, u64)>,
}

impl Hosts {
    pub fn new(listen: SocketAddr) -> Hosts {
        let mut names = vec!["localhost".to_string()];
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let h = h.trim().to_ascii_lowercase();
            if !h.is_empty() {
                names.push(format!("{h}.local"));
                names.push(h);
            }
        }
        if let Some(p) = super::portal::host().and_then(strip_port) {
            names.push(p.to_ascii_lowercase());
        }
        Hosts { listen: listen.ip(), names, ifaddrs: RefCell::new((Vec::new(), 0)) }
    }

    /// Whether a request with this `Host` value is for us.
    pub fn allowed(&self, host: &[u8], now_ns: u64) -> bool {
        let Ok(host) = core::str::from_utf8(host.trim_ascii()) else { return false };
        let Some(name) = strip_port(host) else { return false };
        let plain = name.strip_suffix('.').unwrap_or(name);
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(plain)) {
            return true;
        }
        name.parse::<IpAddr>().is_ok_and(|ip| self.own_ip(ip, now_ns))
    }

    fn own_ip(&self, ip: IpAddr, now_ns: u64) -> bool {
        if ip.is_loopback() || ip == self.listen {
            return true;
        }
        let mut cache = self.ifaddrs.borrow_mut();
        if cache.0.is_empty() || now_ns.saturating_sub(cache.1) > REFRESH_S * 1_000_000_000 {
            cache.0 = interface_addresses();
            cache.1 = now_ns;
        }
        cache.0.contains(&ip)
    }
}

/// `name` of `name`, `name:port`, `[v6]`, `[v6]:port`; `None` when malformed.
fn strip_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
            .then_some(v6);
    }
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    (!name.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// The addresses of this machine's interfaces.
fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*p };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: AF_INET: a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
            } else if family == libc::AF_INET6 {
                // SAFETY: AF_INET6: a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        p = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_names_and_addresses() {
        let h = Hosts::new("0.0.0.0:8080".parse().unwrap());
        for ok in ["127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LOCALHOST", "[::1]:8080", "localhost."] {
            assert!(h.allowed(ok.as_bytes(), 1), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "10.255.255.254:8080", "", ":80", "127.0.0.1:80x", "[::1", "a b"] {
            assert!(!h.allowed(bad.as_bytes(), 1), "{bad}");
        }
        // An interface address of this machine counts (loopback is always one).
        let own = interface_addresses();
        assert!(own.iter().any(|ip| ip.is_loopback()), "{own:?}");
        for ip in own.iter().filter(|ip| ip.is_ipv4()) {
            assert!(h.allowed(format!("{ip}:8080").as_bytes(), 1), "{ip}");
        }
    }
}
