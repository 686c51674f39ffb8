//! Dashboard access: one secret per device, sessions, rate limiting and cross-site checks.
//!
//! - The **secret** is 16 bytes from the OS CSPRNG, kept as 32 lowercase hex digits in
//!   `DATA/secret` (mode 0600, written atomically). It is created on first start and never
//!   logged; `run` prints it once to stderr when it is new.
//! - **API clients** send `Authorization: Bearer <secret>`.
//! - **Browsers** log in at `/login` (a form posting `secret=...`) and get a session cookie
//!   (`HttpOnly; SameSite=Strict; Path=/`) holding a 32-byte random token. Sessions live in a
//!   fixed table of [`SESSIONS`] slots (the oldest is evicted when full); nothing grows per
//!   request. Only the token's SHA-256 is kept, in memory and in `DATA/sessions`
//!   (`web::sessions`), so a phone stays signed in across restarts and power cuts; a session
//!   lasts [`SESSION_TTL_S`] after its last use. `POST /logout` ends the session,
//!   `POST /logout-everywhere` every session.
//! - Secrets and tokens are compared in constant time.
//! - **Guessing** is rate-limited per client address: an address that has failed needs a token
//!   from its own bucket ([`BURST`], refilled at one per second) for each further check, each
//!   failure spends one, and every [`LOCKOUT_AFTER`] consecutive failures lock that address's
//!   secret checks for [`LOCKOUT_S`]. One address's success resets only its own count. A
//!   correct secret from an address with no failures is never refused, so nobody can aim a
//!   lockout at the owner. A global ceiling ([`GLOBAL_BURST`] failures, refilled at one per
//!   [`GLOBAL_REFILL_S`] s) bounds guessing from many addresses: once spent, every failure
//!   locks its address at once. [`CLIENTS`] addresses are remembered (a whole /24). Refusals
//!   are 429 with `Retry-After` (a styled page for browsers). Sessions keep working.
//! - Every route except [`is_public`] ones requires auth: 401 JSON for `/api/*`, otherwise a
//!   redirect to `/login` (for GET/HEAD) or 401.
//! - **Mutating** requests (anything but GET/HEAD/OPTIONS) from another site get 403: a
//!   `Sec-Fetch-Site` of `cross-site`/`same-site`, or an `Origin` whose host is not the `Host`.
//!   Requests with neither header (curl, ffmpeg) are not from a browser and pass.

use picoserve::io::Read;
use picoserve::request::{Headers, RequestParts};
use picoserve::response::{IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::routing::{Layer, Next};
use picoserve::ResponseSent;
use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Bytes of randomness in the device secret.
pub const SECRET_BYTES: usize = 16;
/// Bytes of randomness in a session token.
pub const TOKEN_BYTES: usize = 32;
/// Sessions remembered at once; logging in beyond that ends the oldest session.
pub const SESSIONS: usize = 16;
/// How long a session lasts after its last use (sliding: a phone used every few weeks stays
/// signed in).
pub const SESSION_TTL_S: u64 = 30 * 24 * 3600;
/// A session's expiry is pushed out (and the file rewritten) at most this often.
const SLIDE_S: u64 = 24 * 3600;
/// Secret checks allowed in a burst; the bucket refills at one per second.
pub const BURST: u64 = 5;
/// Consecutive failures that lock secret checks for [`LOCKOUT_S`].
pub const LOCKOUT_AFTER: u32 = 10;
pub const LOCKOUT_S: u64 = 60;
/// Client addresses the limiter remembers (the least recently failing unlocked one is
/// forgotten first).
pub const CLIENTS: usize = 256;
/// Failures from all addresses together allowed in a burst...
pub const GLOBAL_BURST: u64 = 30;
/// ...refilled at one per this many seconds.
pub const GLOBAL_REFILL_S: u64 = 2;
/// Name of the session cookie.
pub const COOKIE: &str = "bb_session";

const NS: u64 = 1_000_000_000;

/// Fills `buf` from the OS CSPRNG (`getrandom(2)`, blocking until the pool is initialised).
pub fn random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Constant-time equality (for equal lengths; a length mismatch is not secret here: secrets
/// and tokens have fixed, public lengths).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    core::hint::black_box(d) == 0
}

fn hex_encode<const N: usize>(bytes: &[u8]) -> heapless::String<N> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = heapless::String::new();
    for b in bytes {
        let _ = s.push(DIGITS[(b >> 4) as usize] as char);
        let _ = s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_decode<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(s[2 * i])? << 4) | nib(s[2 * i + 1])?;
    }
    Some(out)
}

/// Longest owner-chosen password accepted in the secret file.
pub const PASSWORD_MAX: usize = 64;
/// Shortest owner-chosen password accepted in the secret file.
pub const PASSWORD_MIN: usize = 8;

/// Whether `t` (trimmed file contents) is a usable secret: blackbox's own 32 hex digits, or a
/// password the owner chose (the appliance's boot-partition credentials file): 8 to 64
/// printable ASCII characters.
fn secret_text_ok(t: &[u8]) -> bool {
    hex_decode::<SECRET_BYTES>(t).is_some()
        || ((PASSWORD_MIN..=PASSWORD_MAX).contains(&t.len()) && t.iter().all(|b| (0x20..0x7f).contains(b)))
}

/// The device secret as typed by its owner: 32 lowercase hex digits, or a password of 8 to 64
/// printable ASCII characters that the owner chose. Not `Display`, and its `Debug` hides the
/// value, so it cannot end up in a log by accident.
#[derive(Clone)]
pub struct Secret(heapless::String<PASSWORD_MAX>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// File name of the secret inside the data directory.
    pub const FILE: &'static str = "secret";

    /// Reads `DATA/secret`, or creates it from the CSPRNG when it does not exist. Returns the
    /// secret and whether it was created just now. The file may also hold a password of 8 to
    /// 64 printable ASCII characters (the appliance writes the owner's `dashboard_password`
    /// there). A secret file readable by others is tightened to 0600; a malformed one is an
    /// error (delete it to get a new secret).
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<(Secret, bool)> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = data_dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = bytes.trim_ascii();
                let s = core::str::from_utf8(text)
                    .ok()
                    .filter(|t| secret_text_ok(t.as_bytes()))
                    .and_then(|t| heapless::String::try_from(t).ok())
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{}: not a blackbox secret (delete it to generate a new one)", path.display()),
                        )
                    })?;
                let meta = std::fs::metadata(&path)?;
                if meta.permissions().mode() & 0o077 != 0 {
                    log::warn!("{}: was readable by others; setting mode 0600", path.display());
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok((Secret(s), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = [0u8; SECRET_BYTES];
                random(&mut raw)?;
                let s: heapless::String<PASSWORD_MAX> = hex_encode(&raw);
                let mut file = [0u8; 2 * SECRET_BYTES + 1];
                file[..2 * SECRET_BYTES].copy_from_slice(s.as_bytes());
                file[2 * SECRET_BYTES] = b'\n';
                crate::config::write_atomic_mode(&path, &file, 0o600)?;
                Ok((Secret(s), true))
            }
            Err(e) => Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    /// The secret itself, for the one-time message at first start. Never log it.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    fn matches(&self, candidate: &[u8]) -> bool {
        ct_eq(self.0.as_bytes(), candidate)
    }
}

#[derive(Clone, Copy)]
struct Session {
    /// SHA-256 of the token (`web::sessions`): the token itself is not kept.
    hash: [u8; 32],
    expires_ns: u64,
}

/// The limiter's memory of one client address that has failed.
#[derive(Clone, Copy)]
struct Client {
    ip: IpAddr,
    /// Bucket level in thousandths of a check.
    bucket_milli: u64,
    bucket_at_ns: u64,
    failures: u32,
    locked_until_ns: u64,
    last_failure_ns: u64,
}

/// Mutable auth state: the session table and the limiter. Only the web thread touches it.
struct State {
    sessions: [Option<Session>; SESSIONS],
    clients: Box<[Option<Client>; CLIENTS]>,
    /// Global failure bucket, thousandths.
    global_milli: u64,
    global_at_ns: u64,
}

/// Why a secret check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    pub retry_after_s: u64,
}

/// The auth state of a server: its secret, sessions and limiter.
pub struct Auth {
    secret: Secret,
    state: RefCell<State>,
    /// Where sessions are kept across restarts (`None`: in memory only).
    store: Option<super::sessions::Store>,
    /// The client of the request the layer just passed on (see [`AuthLayer`]).
    pub current_client: std::cell::Cell<IpAddr>,
}

/// What the credentials on a request amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Missing,
    Wrong,
    Limited(TooMany),
}

impl Auth {
    pub fn new(secret: Secret) -> Auth {
        Auth {
            secret,
            state: RefCell::new(State {
                sessions: [None; SESSIONS],
                clients: Box::new([None; CLIENTS]),
                global_milli: GLOBAL_BURST * 1000,
                global_at_ns: crate::clock::now_mono_ns(),
            }),
            current_client: std::cell::Cell::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            store: None,
        }
    }

    /// As [`Auth::new`], with the sessions of `DATA/sessions` (`web::sessions`) restored and
    /// every change written back.
    pub fn with_store(secret: Secret, data_dir: &std::path::Path) -> Auth {
        let mut a = Auth::new(secret);
        let store = super::sessions::Store::new(data_dir);
        let (now, now_utc) = (crate::clock::now_mono_ns(), crate::clock::now_utc_ns());
        let mut loaded = store.load(now_utc);
        loaded.sort_by_key(|s| std::cmp::Reverse(s.1));
        {
            let mut st = a.state.borrow_mut();
            for (slot, (hash, exp_utc)) in st.sessions.iter_mut().zip(loaded.iter()) {
                let left = u64::try_from(exp_utc.saturating_sub(now_utc)).unwrap_or(0).min(SESSION_TTL_S * NS);
                *slot = Some(Session { hash: *hash, expires_ns: now + left });
            }
        }
        if !loaded.is_empty() {
            log::info!("dashboard: {} session(s) restored", loaded.len().min(SESSIONS));
        }
        a.store = Some(store);
        a
    }

    /// Writes the live sessions to the store (expiry in UTC).
    fn persist(&self, now_ns: u64) {
        let Some(store) = &self.store else { return };
        let now_utc = crate::clock::now_utc_ns();
        let list: Vec<([u8; 32], i64)> = self
            .state
            .borrow()
            .sessions
            .iter()
            .flatten()
            .filter(|s| s.expires_ns > now_ns)
            .map(|s| (s.hash, now_utc.saturating_add(i64::try_from(s.expires_ns - now_ns).unwrap_or(i64::MAX))))
            .collect();
        store.save(&list);
    }

    /// Ends every session ("sign out everywhere").
    pub fn end_all_sessions(&self) {
        self.state.borrow_mut().sessions = [None; SESSIONS];
        self.persist(crate::clock::now_mono_ns());
        log::warn!("dashboard: every session ended (sign out everywhere)");
    }

    /// Checks a candidate secret from `client` under the limiter: refused without looking when
    /// that address is locked out or its bucket is empty; a failure spends a token and may lock
    /// the address. An address with no failures is always checked.
    pub fn check_secret(&self, candidate: &[u8], client: IpAddr, now_ns: u64) -> Verdict {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let idx = st.clients.iter().position(|c| c.is_some_and(|c| c.ip == client));
        if let Some(c) = idx.and_then(|i| st.clients[i].as_mut()) {
            if now_ns < c.locked_until_ns {
                return Verdict::Limited(TooMany { retry_after_s: (c.locked_until_ns - now_ns).div_ceil(NS).max(1) });
            }
            let elapsed_ms = now_ns.saturating_sub(c.bucket_at_ns) / 1_000_000;
            c.bucket_milli = (c.bucket_milli + elapsed_ms).min(BURST * 1000);
            c.bucket_at_ns = now_ns;
            if c.bucket_milli < 1000 {
                return Verdict::Limited(TooMany { retry_after_s: 1 });
            }
        }
        if self.secret.matches(candidate) {
            if let Some(i) = idx {
                st.clients[i] = None;
            }
            return Verdict::Allowed;
        }
        let i = idx.unwrap_or_else(|| {
            // A free entry, else the unlocked one that failed longest ago, else the oldest.
            let i = st
                .clients
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| match c {
                    None => (0, 0),
                    Some(c) if c.locked_until_ns <= now_ns => (1, c.last_failure_ns),
                    Some(c) => (2, c.last_failure_ns),
                })
                .map_or(0, |(i, _)| i);
            st.clients[i] = Some(Client {
                ip: client,
                bucket_milli: BURST * 1000,
                bucket_at_ns: now_ns,
                failures: 0,
                locked_until_ns: 0,
                last_failure_ns: now_ns,
            });
            i
        });
        let global_ok = {
            let refill = now_ns.saturating_sub(st.global_at_ns) / (GLOBAL_REFILL_S * 1_000_000);
            st.global_milli = (st.global_milli + refill).min(GLOBAL_BURST * 1000);
            st.global_at_ns = now_ns;
            if st.global_milli >= 1000 {
                st.global_milli -= 1000;
                true
            } else {
                false
            }
        };
        let Some(c) = st.clients[i].as_mut() else { return Verdict::Wrong };
        c.bucket_milli = c.bucket_milli.saturating_sub(1000);
        c.failures += 1;
        c.last_failure_ns = now_ns;
        if c.failures.is_multiple_of(LOCKOUT_AFTER) || !global_ok {
            c.locked_until_ns = now_ns + LOCKOUT_S * NS;
            log::warn!(
                "web: {} failed logins in a row from {}{}; its secret checks are locked for {LOCKOUT_S} s",
                c.failures,
                c.ip,
                if global_ok { "" } else { " (many failures from all clients)" }
            );
        }
        Verdict::Wrong
    }

    /// Starts a session; returns its token. The oldest session goes when the table is full.
    pub fn create_session(&self, now_ns: u64) -> std::io::Result<[u8; TOKEN_BYTES]> {
        let mut token = [0u8; TOKEN_BYTES];
        random(&mut token)?;
        let mut st = self.state.borrow_mut();
        let slot = st
            .sessions
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| match s {
                Some(s) if s.expires_ns > now_ns => s.expires_ns,
                _ => 0,
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        st.sessions[slot] = Some(Session { hash: super::sessions::hash(&token), expires_ns: now_ns + SESSION_TTL_S * NS });
        drop(st);
        self.persist(now_ns);
        Ok(token)
    }

    /// Index of the live session with this token. Compares against every slot in constant time.
    fn find_session(&self, token: &[u8; TOKEN_BYTES], now_ns: u64) -> Option<usize> {
        let st = self.state.borrow();
        let mut found = None;
        let h = super::sessions::hash(token);
        for (i, s) in st.sessions.iter().enumerate() {
            if let Some(s) = s
                && ct_eq(&s.hash, &h)
                && s.expires_ns > now_ns
            {
                found = Some(i);
            }
        }
        found
    }

    /// Ends the session named by the request's cookie, if any.
    pub fn end_session(&self, headers: &Headers<'_>) {
        if let Some(token) = session_cookie(headers)
            && let Some(i) = self.find_session(&token, crate::clock::now_mono_ns())
        {
            self.state.borrow_mut().sessions[i] = None;
            self.persist(crate::clock::now_mono_ns());
        }
    }

    /// Whether the request carries a live session cookie.
    pub fn has_session(&self, headers: &Headers<'_>, now_ns: u64) -> bool {
        let Some(i) = session_cookie(headers).and_then(|token| self.find_session(&token, now_ns)) else { return false };
        // Sliding expiry: used, it lasts SESSION_TTL_S from now (written at most once a day).
        let slid = {
            let mut st = self.state.borrow_mut();
            match &mut st.sessions[i] {
                Some(s) if s.expires_ns < now_ns + (SESSION_TTL_S - SLIDE_S) * NS => {
                    s.expires_ns = now_ns + SESSION_TTL_S * NS;
                    true
                }
                _ => false,
            }
        };
        if slid {
            self.persist(now_ns);
        }
        true
    }

    /// Checks a request's credentials: a live session cookie, else a Bearer secret.
    pub fn verify(&self, headers: &Headers<'_>, client: IpAddr, now_ns: u64) -> Verdict {
        if self.has_session(headers, now_ns) {
            return Verdict::Allowed;
        }
        match bearer(headers) {
            Some(candidate) => self.check_secret(candidate, client, now_ns),
            None => Verdict::Missing,
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer<'a>(headers: &Headers<'a>) -> Option<&'a [u8]> {
    let v = headers.get("Authorization")?.as_raw();
    let v = v.trim_ascii();
    if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
        Some(v[7..].trim_ascii())
    } else {
        None
    }
}

/// The session token in the `Cookie` header, if well-formed.
fn session_cookie(headers: &Headers<'_>) -> Option<[u8; TOKEN_BYTES]> {
    for h in headers.iter() {
        if !h.0.as_raw().eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for part in h.1.as_raw().split(|&b| b == b';') {
            let part = part.trim_ascii();
            if let Some(v) = part.strip_prefix(COOKIE.as_bytes()).and_then(|r| r.strip_prefix(b"="))
                && let Some(t) = hex_decode::<TOKEN_BYTES>(v)
            {
                return Some(t);
            }
        }
    }
    None
}

/// Routes that need no credentials: health, the login page, static assets.
pub fn is_public(path: &str) -> bool {
    match path {
        "/health" | "/login" | "/logout" | "/favicon.ico" | "/pair" => true,
        p if super::portal::is_probe(p) => true,
        // Dashboard assets: plain file names only (optionally under a 16-hex-digit version
        // directory), so nothing outside /assets/ can match.
        p => p.strip_prefix("/assets/").is_some_and(|rest| {
            let name = match rest.split_once('/') {
                Some((v, name)) if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => name,
                Some(_) => return false,
                None => rest,
            };
            !name.is_empty()
                && !name.starts_with('.')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }),
    }
}

fn is_mutating(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether a request comes from another site (see the module docs).
pub fn is_cross_site(headers: &Headers<'_>) -> bool {
    if let Some(site) = headers.get("Sec-Fetch-Site") {
        let s = site.as_raw().trim_ascii();
        if s.eq_ignore_ascii_case(b"cross-site") || s.eq_ignore_ascii_case(b"same-site") {
            return true;
        }
    }
    let Some(origin) = headers.get("Origin") else {
        return false;
    };
    match headers.get("Host") {
        Some(host) => !origin_matches_host(origin.as_raw(), host.as_raw()),
        None => true,
    }
}

/// Whether `Origin: <origin>` names the site at `Host: <host>` (scheme http or https; a default
/// port may be written or left out on either side). `null` and other schemes never match.
pub fn origin_matches_host(origin: &[u8], host: &[u8]) -> bool {
    let origin = origin.trim_ascii();
    let host = host.trim_ascii();
    let (o, default_port): (&[u8], &[u8]) = if let Some(o) = origin.strip_prefix(b"http://") {
        (o, b":80")
    } else if let Some(o) = origin.strip_prefix(b"https://") {
        (o, b":443")
    } else {
        return false;
    };
    let o = o.strip_suffix(default_port).unwrap_or(o);
    let h = host.strip_suffix(default_port).unwrap_or(host);
    !o.is_empty() && o.eq_ignore_ascii_case(h)
}

/// Content-Security-Policy of every response: our own scripts and styles only (inline style
/// attributes allowed), no framing, forms only to ourselves.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to whatever response the routes write. `Referrer-Policy` is
/// `same-origin`, not `no-referrer`: with that Chromium sends `Origin: null` with form posts,
/// which the cross-site check refuses (the sign-in and sign-out forms).
struct Secured<W>(W);

impl<W: ResponseWriter> ResponseWriter for Secured<W> {
    type Error = W::Error;

    async fn write_response<R: Read<Error = Self::Error>, H: picoserve::response::HeadersIter, B: picoserve::response::Body>(
        self,
        connection: picoserve::response::Connection<'_, R>,
        response: Response<H, B>,
    ) -> Result<ResponseSent, Self::Error> {
        let response = response
            .with_header("X-Content-Type-Options", "nosniff")
            .with_header("Content-Security-Policy", CSP)
            .with_header("Referrer-Policy", "same-origin");
        self.0.write_response(connection, response).await
    }
}

/// The layer in front of every route: Host check, cross-site check, credentials.
pub struct AuthLayer<'a> {
    pub auth: &'a Auth,
    pub hosts: &'a super::host::Hosts,
}

impl<'s> Layer<super::pool::ConnRef<'s>, ()> for AuthLayer<'_> {
    type NextState = ();
    type NextPathParameters = ();

    async fn call_layer<'a, R: Read + 'a, N: Next<'a, R, (), ()>, W: ResponseWriter<Error = R::Error>>(
        &self,
        next: N,
        conn: &super::pool::ConnRef<'s>,
        path_parameters: (),
        parts: RequestParts<'_>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let response_writer = Secured(response_writer);
        let slot = conn.0;
        // HEAD arrives here as GET (src/web/strict.rs); its answer goes out without a body.
        slot.begin_request();
        let client = slot.peer.get().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let now = crate::clock::now_mono_ns();
        let headers = parts.headers();
        let method = parts.method();
        let path = parts.path().encoded();
        // /api/docs is a page: a browser without a session goes to the sign-in page.
        let api = (path.starts_with("/api/") || path == "/api") && path != "/api/docs";
        let host_ok = super::portal::is_probe(path)
            || headers.get("Host").is_some_and(|h| self.hosts.allowed(h.as_raw(), now))
            // HTTP/1.0 without Host (strict.rs refuses HTTP/1.1 without one): the connection
            // reached our socket by address.
            || headers.get("Host").is_none();
        let refusal = if !host_ok {
            Some(Reply::Misdirected)
        } else if is_mutating(method) && is_cross_site(&headers) {
            Some(Reply::Forbidden)
        } else if is_public(path) {
            if self.auth.has_session(&headers, now) {
                slot.authed.set(true);
            }
            None
        } else {
            match self.auth.verify(&headers, client, now) {
                Verdict::Allowed => {
                    slot.authed.set(true);
                    None
                }
                Verdict::Limited(t) if !api && matches!(method, "GET" | "HEAD") => Some(Reply::TooManyPage(t)),
                Verdict::Limited(t) => Some(Reply::TooMany(t)),
                Verdict::Missing | Verdict::Wrong if !api && matches!(method, "GET" | "HEAD") => {
                    Some(Reply::ToLogin)
                }
                Verdict::Missing | Verdict::Wrong => Some(Reply::Unauthorized),
            }
        };
        match refusal {
            None => {
                // For POST /login: the service reads this before its first await (so before
                // any other connection's layer can run).
                self.auth.current_client.set(client);
                slot.responding.set(true);
                let sent = next.run(&(), path_parameters, response_writer).await;
                slot.responding.set(false);
                sent
            }
            Some(reply) => {
                let conn = next.into_connection().await?;
                reply.write_to(conn, response_writer).await
            }
        }
    }
}

/// The session token as a `Set-Cookie` value.
pub struct SetSession(pub [u8; TOKEN_BYTES]);

impl fmt::Display for SetSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: heapless::String<{ 2 * TOKEN_BYTES }> = hex_encode(&self.0);
        write!(f, "{COOKIE}={hex}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL_S}")
    }
}

/// Responses of the auth layer and the login routes.
pub enum Reply {
    Unauthorized,
    ToLogin,
    Forbidden,
    Misdirected,
    TooMany(TooMany),
    TooManyPage(TooMany),
    LoginPage,
    LoginFailed,
    PairFailed,
    LoggedIn([u8; TOKEN_BYTES]),
    LoggedOut,
    Error,
}

macro_rules! login_head {
    () => {
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="dark">
<meta name="theme-color" content="#0b0d10">
<title>blackbox · sign in</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<style>
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;
padding:1rem;background:#0b0d10;color:#eef0f2;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.brand{display:flex;align-items:center;gap:.6rem;font-weight:700;font-size:1.5rem;margin-bottom:1.25rem}
form{width:min(24rem,100%);padding:1.5rem;border-radius:14px;background:#15181d;border:1px solid #2a3038}
h1{font-size:1.15rem;margin:0 0 .25rem}
p{margin:0 0 1.1rem;color:#a3acb7;font-size:.95rem}
code{color:#eef0f2}
label{display:block;margin-bottom:.4rem;font-weight:600}
input{width:100%;min-height:52px;padding:.75rem .9rem;border-radius:10px;border:1px solid #2a3038;
background:#0b0d10;color:#eef0f2;font:1.05rem ui-monospace,Menlo,Consolas,monospace;letter-spacing:.03em}
input:focus{outline:3px solid #ffb020;outline-offset:2px}
button{margin-top:1.1rem;width:100%;min-height:52px;border:0;border-radius:10px;background:#ffb020;
color:#1a1200;font:700 1.05rem system-ui,sans-serif;cursor:pointer}
button:focus-visible{outline:3px solid #eef0f2;outline-offset:2px}
.show{display:flex;align-items:center;gap:.5rem;margin:.2rem 0 1rem;font-weight:400}
.show input{width:auto;margin:0}
.err{color:#ff6b6b;font-weight:600;margin:0 0 1rem;padding:.6rem .8rem;border-radius:10px;background:#2a1213;border:1px solid #6b1f22}
</style></head><body>
<div class="brand"><svg width="36" height="36" viewBox="0 0 64 64" aria-hidden="true"><rect width="64" height="64" rx="14" fill="#15181d"/><rect x="8" y="18" width="48" height="30" rx="7" fill="none" stroke="#ffb020" stroke-width="4"/><circle cx="32" cy="33" r="8" fill="none" stroke="#eef0f2" stroke-width="4"/><circle cx="48" cy="12" r="6" fill="#ff4d4f"/></svg>blackbox</div>
<form method="post" action="/login">
<h1>Sign in</h1>
<p>Enter the device secret: 32 characters, shown once when blackbox first started and kept in <code>secret</code> in its data folder.</p>
"##
    };
}
macro_rules! login_tail {
    () => {
        r#"<label for="secret">Device secret</label>
<input id="secret" name="secret" type="password" autocomplete="current-password" autocapitalize="off"
 spellcheck="false" required autofocus>
<label class="show"><input type="checkbox" id="show"> Show</label>
<button type="submit">Sign in</button>
</form><script src="/assets/login.js?v=1" defer></script></body></html>
"#
    };
}
/// The login form (dark, phone-sized, no scripts, nothing external).
pub const LOGIN_PAGE: &str = concat!(login_head!(), login_tail!());
const LOGIN_FAILED_PAGE: &str = concat!(login_head!(), "<p class=\"err\">Wrong secret.</p>\n", login_tail!());
/// A pairing link that was used, expired or never made.
const PAIR_FAILED_PAGE: &str = concat!(
    login_head!(),
    "<p class=\"err\">This pairing link has been used or has expired. Make a new one on the System page of a signed-in phone, or sign in with the secret.</p>\n",
    login_tail!()
);

/// The login page saying how long to wait (429 for browsers).
struct TooManyPage(u64);

impl TooManyPage {
    fn parts(&self) -> (&'static str, heapless::String<160>, &'static str) {
        let mut msg = heapless::String::new();
        let _ = fmt::Write::write_fmt(
            &mut msg,
            format_args!("<p class=\"err\" role=\"alert\">Too many wrong attempts from this device. Try again in {} s.</p>\n", self.0),
        );
        (login_head!(), msg, login_tail!())
    }
}

impl picoserve::response::Content for TooManyPage {
    fn content_type(&self) -> &'static str {
        "text/html; charset=utf-8"
    }

    fn content_length(&self) -> usize {
        let (a, b, c) = self.parts();
        a.len() + b.len() + c.len()
    }

    async fn write_content<W: picoserve::io::Write>(self, mut w: W) -> Result<(), W::Error> {
        let (a, b, c) = self.parts();
        w.write_all(a.as_bytes()).await?;
        w.write_all(b.as_bytes()).await?;
        w.write_all(c.as_bytes()).await
    }
}

impl IntoResponse for Reply {
    async fn write_to<R: Read, W: ResponseWriter<Error = R::Error>>(
        self,
        connection: picoserve::response::Connection<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        const NO_STORE: (&str, &str) = ("Cache-Control", "no-store");
        let html = "text/html; charset=utf-8";
        match self {
            Reply::Unauthorized => {
                Response::new(StatusCode::UNAUTHORIZED, "{\"error\":\"unauthorized\"}")
                    .with_content_type("application/json")
                    .with_header("WWW-Authenticate", "Bearer realm=\"blackbox\"")
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::ToLogin => {
                Response::new(StatusCode::SEE_OTHER, "")
                    .with_header("Location", "/login")
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::Forbidden => {
                Response::new(StatusCode::FORBIDDEN, "{\"error\":\"cross-site request refused\"}")
                    .with_content_type("application/json")
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::Misdirected => {
                Response::new(StatusCode::MISDIRECTED_REQUEST, "{\"error\":\"this device does not serve that host name\"}")
                    .with_content_type("application/json")
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::TooManyPage(t) => {
                Response::new(StatusCode::TOO_MANY_REQUESTS, TooManyPage(t.retry_after_s))
                    .with_header("Retry-After", t.retry_after_s)
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::TooMany(t) => {
                let body =
                    format!("{{\"error\":\"too many attempts; try again in {0} s\",\"retry_after_s\":{0}}}", t.retry_after_s);
                Response::new(StatusCode::TOO_MANY_REQUESTS, body.as_str())
                    .with_content_type("application/json")
                    .with_header("Retry-After", t.retry_after_s)
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::LoginPage => {
                Response::ok(LOGIN_PAGE)
                    .with_content_type(html)
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::LoginFailed => {
                Response::new(StatusCode::UNAUTHORIZED, LOGIN_FAILED_PAGE)
                    .with_content_type(html)
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::PairFailed => {
                Response::new(StatusCode::NOT_FOUND, PAIR_FAILED_PAGE)
                    .with_content_type(html)
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::LoggedIn(token) => {
                Response::new(StatusCode::SEE_OTHER, "")
                    .with_header("Location", "/")
                    .with_header("Set-Cookie", SetSession(token))
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::LoggedOut => {
                Response::new(StatusCode::SEE_OTHER, "")
                    .with_header("Location", "/login")
                    .with_header("Set-Cookie", format_args!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))
                    .with_header(NO_STORE.0, NO_STORE.1)
                    .write_to(connection, response_writer)
                    .await
            }
            Reply::Error => {
                Response::new(StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"internal error\"}")
                    .with_content_type("application/json")
                    .write_to(connection, response_writer)
                    .await
            }
        }
    }
}

/// The value of `secret` in a form body (`application/x-www-form-urlencoded`), decoded.
fn form_secret(body: &[u8]) -> Option<heapless::String<128>> {
    let body = core::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let v = pair.strip_prefix("secret=")?;
        picoserve::url_encoded::UrlEncodedString(v).try_into_string::<128>().ok()
    })
}

impl Auth {
    /// `POST /login`: checks the form's secret under the limiter.
    pub fn login(&self, body: &[u8], client: IpAddr) -> Reply {
        let now = crate::clock::now_mono_ns();
        let candidate = form_secret(body);
        let candidate = candidate.as_deref().unwrap_or("").trim();
        match self.check_secret(candidate.as_bytes(), client, now) {
            Verdict::Allowed => match self.create_session(now) {
                Ok(token) => Reply::LoggedIn(token),
                Err(e) => {
                    log::error!("web: cannot create a session token: {e}");
                    Reply::Error
                }
            },
            Verdict::Limited(t) => Reply::TooManyPage(t),
            Verdict::Missing | Verdict::Wrong => Reply::LoginFailed,
        }
    }
}

/// `GET /pair?code=...`: a pairing link (src/web/pairing.rs) signs this browser in, once.
pub struct PairService<'a>(pub &'a Auth, pub &'a super::pairing::Pairing);

impl picoserve::routing::RequestHandlerService<(), ()> for PairService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let code = request.parts.query().and_then(|q| {
            q.0.split('&').find_map(|kv| kv.strip_prefix("code=")).map(|v| v.chars().take(64).collect::<heapless::String<64>>())
        });
        let reply = match code {
            Some(c) if self.1.redeem(&c) => match self.0.create_session(crate::clock::now_mono_ns()) {
                Ok(token) => {
                    log::info!("web: a browser signed in with a pairing link");
                    Reply::LoggedIn(token)
                }
                Err(e) => {
                    log::error!("web: cannot create a session token: {e}");
                    Reply::Error
                }
            },
            _ => Reply::PairFailed,
        };
        reply.write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

/// `POST /login` (form body `secret=...`).
pub struct LoginService<'a>(pub &'a Auth);

impl picoserve::routing::RequestHandlerService<(), ()> for LoginService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        mut request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let client = self.0.current_client.get();
        // A body that does not fit the request buffer is not a login form: a failed attempt.
        let reply = match request.body_connection.body().read_all().await {
            Ok(body) => self.0.login(body, client),
            Err(_) => self.0.login(b"", client),
        };
        reply.write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

/// `POST /logout`: ends the cookie's session (if any) and clears the cookie.
/// `POST /logout-everywhere`: ends every session (the System page's "Sign out everywhere").
pub struct LogoutEverywhereService<'a>(pub &'a Auth);

impl picoserve::routing::RequestHandlerService<(), ()> for LogoutEverywhereService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        self.0.end_all_sessions();
        Reply::LoggedOut.write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

pub struct LogoutService<'a>(pub &'a Auth);

impl picoserve::routing::RequestHandlerService<(), ()> for LogoutService<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: picoserve::request::Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        self.0.end_session(&request.parts.headers());
        Reply::LoggedOut.write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret(heapless::String::try_from(s).unwrap())
    }

    const S: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let b = [0u8, 1, 0xab, 0xff];
        let h: heapless::String<8> = hex_encode(&b);
        assert_eq!(h, "0001abff");
        assert_eq!(hex_decode::<4>(h.as_bytes()), Some(b));
        assert_eq!(hex_decode::<4>(b"0001abf"), None);
        assert_eq!(hex_decode::<4>(b"0001abfg"), None);
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn the_bucket_refuses_after_a_burst_and_refills() {
        let a = Auth::new(secret(S));
        let t0 = 1_000 * NS;
        for _ in 0..BURST {
            assert_eq!(a.check_secret(b"nope", ip(1), t0), Verdict::Wrong);
        }
        assert!(matches!(a.check_secret(S.as_bytes(), ip(1), t0), Verdict::Limited(_)), "even the right secret waits");
        assert_eq!(a.check_secret(S.as_bytes(), ip(2), t0), Verdict::Allowed, "another address is not limited");
        assert_eq!(a.check_secret(S.as_bytes(), ip(1), t0 + NS), Verdict::Allowed);
    }

    #[test]
    fn consecutive_failures_lock_out_that_address_only() {
        let a = Auth::new(secret(S));
        let mut t = 1_000 * NS;
        for _ in 0..LOCKOUT_AFTER {
            t += NS;
            assert_eq!(a.check_secret(b"nope", ip(1), t), Verdict::Wrong);
            // The owner's successes elsewhere do not reset the attacker's count.
            assert_eq!(a.check_secret(S.as_bytes(), ip(2), t), Verdict::Allowed);
        }
        match a.check_secret(S.as_bytes(), ip(1), t + NS) {
            Verdict::Limited(TooMany { retry_after_s }) => assert!(retry_after_s > 50, "{retry_after_s}"),
            v => panic!("{v:?}"),
        }
        assert_eq!(a.check_secret(S.as_bytes(), ip(2), t + NS), Verdict::Allowed, "the owner is never locked out");
        assert_eq!(a.check_secret(S.as_bytes(), ip(1), t + (LOCKOUT_S + 1) * NS), Verdict::Allowed);
    }

    #[test]
    fn many_addresses_hit_the_global_ceiling_and_then_lock_at_the_first_failure() {
        let a = Auth::new(secret(S));
        let t = 1_000 * NS;
        assert_eq!(a.check_secret(b"nope", ip(0), t), Verdict::Wrong);
        assert_eq!(a.check_secret(b"nope", ip(0), t), Verdict::Wrong, "one failure does not lock under the ceiling");
        for n in 1..GLOBAL_BURST as u8 - 1 {
            assert_eq!(a.check_secret(b"nope", ip(n), t), Verdict::Wrong);
        }
        // The ceiling is spent: a new address gets one guess, then it is locked.
        assert_eq!(a.check_secret(b"nope", ip(200), t), Verdict::Wrong);
        assert!(matches!(a.check_secret(S.as_bytes(), ip(200), t + NS), Verdict::Limited(_)));
        // A clean address with the right secret still gets in.
        assert_eq!(a.check_secret(S.as_bytes(), ip(201), t + NS), Verdict::Allowed);
    }

    #[test]
    fn sessions_expire_and_the_oldest_is_evicted() {
        let a = Auth::new(secret(S));
        let t0 = 1_000 * NS;
        let first = a.create_session(t0).unwrap();
        assert!(a.find_session(&first, t0 + NS).is_some());
        assert!(a.find_session(&first, t0 + SESSION_TTL_S * NS + 1).is_none());
        for i in 0..SESSIONS as u64 {
            a.create_session(t0 + (i + 1) * NS).unwrap();
        }
        assert!(a.find_session(&first, t0 + 100 * NS).is_none(), "the oldest went");
        assert!(a.find_session(&[0u8; TOKEN_BYTES], t0).is_none());
    }

    #[test]
    fn public_paths_are_few() {
        for p in ["/health", "/login", "/logout", "/assets/app.js", "/assets/a-b_c.css", "/assets/0123456789abcdef/app.js"] {
            assert!(is_public(p), "{p}");
        }
        for p in ["/", "/api/status", "/assets/", "/assets/../api", "/assets/.x", "/assets/a/b", "/assets/%2e%2e", "/assets/0123456789abcdef/../x", "/assets/0123456789abcdeg/app.js", "/health/x", "/loginx", "/static/app.js"] {
            assert!(!is_public(p), "{p}");
        }
    }

    #[test]
    fn origins_match_their_own_host_only() {
        let ok = |o: &str, h: &str| origin_matches_host(o.as_bytes(), h.as_bytes());
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(ok("http://Blackbox.Local", "blackbox.local"));
        assert!(ok("http://10.0.0.1", "10.0.0.1:80"));
        assert!(ok("http://10.0.0.1:80", "10.0.0.1"));
        assert!(ok("https://cam", "cam:443"));
        assert!(!ok("http://10.0.0.1:8080", "10.0.0.1"));
        assert!(!ok("http://10.0.0.1.evil.example", "10.0.0.1"));
        assert!(!ok("null", "10.0.0.1"));
        assert!(!ok("file://", ""));
        assert!(!ok("http://", ""));
        assert!(!ok("ftp://10.0.0.1", "10.0.0.1"));
    }

    #[test]
    fn form_bodies_decode() {
        assert_eq!(form_secret(b"secret=ab%20c+d").as_deref(), Some("ab c d"));
        assert_eq!(form_secret(b"x=1&secret=abc").as_deref(), Some("abc"));
        assert_eq!(form_secret(b"x=1"), None);
    }

    #[test]
    fn the_secret_file_is_created_0600_and_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (s1, new1) = Secret::load_or_create(dir.path()).unwrap();
        assert!(new1);
        let path = dir.path().join(Secret::FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (s2, new2) = Secret::load_or_create(dir.path()).unwrap();
        assert!(!new2);
        assert_eq!(s1.reveal(), s2.reveal());
        assert_eq!(s1.reveal().len(), 2 * SECRET_BYTES);
        assert_eq!(format!("{s1:?}"), "Secret(..)");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Secret::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, "short\n").unwrap();
        assert!(Secret::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn an_owner_chosen_password_in_the_secret_file_is_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Secret::FILE);
        std::fs::write(&path, "  My car 2026!\n").unwrap();
        let (s, new) = Secret::load_or_create(dir.path()).unwrap();
        assert!(!new);
        assert_eq!(s.reveal(), "My car 2026!");
        let a = Auth::new(s);
        assert_eq!(a.check_secret(b"My car 2026!", ip(1), 1), Verdict::Allowed);
        assert_eq!(a.check_secret(b"my car 2026!", ip(1), 2), Verdict::Wrong);
        for bad in ["1234567", "tab\there ok", &"x".repeat(PASSWORD_MAX + 1), "caf\u{e9} au lait"] {
            std::fs::write(&path, bad).unwrap();
            assert!(Secret::load_or_create(dir.path()).is_err(), "{bad:?}");
        }
        std::fs::write(&path, "x".repeat(PASSWORD_MAX)).unwrap();
        assert!(Secret::load_or_create(dir.path()).is_ok());
    }
}
