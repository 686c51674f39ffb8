//! TLS for offload's connections (rustls with the ring provider). The server's certificate is
//! checked against the system's CA bundle, or only against the target's own CA file (a NAS
//! with a private CA). Certificate dates are checked with our clock corrected by the offset
//! learnt from the server (the Pi has no real-time clock): `ClockOffset`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Seconds to add to the system clock to get the servers' time (shared by signing and TLS).
#[derive(Debug, Default)]
pub struct ClockOffset(AtomicI64);

impl ClockOffset {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, s: i64) {
        self.0.store(s, Ordering::Relaxed)
    }
    /// UTC ns, corrected.
    pub fn now_ns(&self) -> i64 {
        crate::clock::now_utc_ns().saturating_add(self.get().saturating_mul(1_000_000_000))
    }
}

impl rustls::time_provider::TimeProvider for ClockOffset {
    fn current_time(&self) -> Option<UnixTime> {
        let s = self.now_ns().div_euclid(1_000_000_000);
        u64::try_from(s).ok().map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
    }
}

/// Where Debian, Buildroot and most distributions keep the CA bundle.
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// A client configuration trusting `ca_file` only, or the system's CA bundle without one.
pub fn client_config(ca_file: Option<&Path>, clock: Arc<ClockOffset>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let files: Vec<&Path> = match ca_file {
        Some(f) => vec![f],
        None => SYSTEM_BUNDLES.iter().map(Path::new).filter(|p| p.exists()).take(1).collect(),
    };
    if files.is_empty() {
        return Err("no CA certificates: the system has no CA bundle (install ca-certificates) and no s3_ca_file is set".into());
    }
    for f in &files {
        let iter = CertificateDer::pem_file_iter(f).map_err(|e| format!("{}: {e}", f.display()))?;
        for c in iter {
            let c = c.map_err(|e| format!("{}: {e}", f.display()))?;
            // A bundle may hold a certificate rustls can't use; skip it rather than fail all.
            let _ = roots.add(c);
        }
    }
    if roots.is_empty() {
        return Err(format!("{}: no usable CA certificate in it", files[0].display()));
    }
    // ring: deprecated in rustls 0.23.48 only for lacking post-quantum key exchange, which
    // aws-lc-rs has at ~0.9 MB more binary (and cmake for aarch64).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_details(provider, clock)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Says what a TLS failure means for the owner (a wrong clock, an unknown CA).
pub fn explain(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    use rustls::{CertificateError as C, Error as E};
    Some(match inner {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "the server's certificate is not valid at this device's time ({}): set the clock (System page) — {inner}",
            crate::clock::Iso(crate::clock::now_utc_ns())
        ),
        E::InvalidCertificate(C::UnknownIssuer) => format!("the server's certificate is not signed by a trusted CA (for a NAS with its own CA, set s3_ca_file) — {inner}"),
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!("the server's certificate is for another name than the endpoint's — {inner}"),
        _ => format!("TLS: {inner}"),
    })
}
