//! Kill -9 torture (docs/FORMAT.md, goals 1 and 2): a real `blackbox run` child records the
//! synthetic camera into one data dir and is SIGKILLed at a random moment, again and again.
//! After every kill:
//!
//! 1. `blackbox verify DIR --json` exits 0 and its figures agree with the reader;
//! 2. the library's `Reader` returns every frame from the oldest retained seq up to the last
//!    `durable N` the child reported, in order, without a hole, each CRC-checked and a JPEG
//!    (FFD8 … FFD9);
//! 3. sequence numbers go on across restarts.
//!
//! Kills are spread over three moments: right after the start (the child's recovery of the
//! previous crash may be in progress), at a random time, and right after the child reported a
//! durable seq close to a segment boundary (so kills land in rotation and retention).
//!
//! Replay a run's kill schedule with `BLACKBOX_CRASH_SEED=0x… cargo test --release --test
//! crash_kill -- --nocapture`; `BLACKBOX_CRASH_CYCLES=N` changes the number of cycles
//! (at least 50 by default). The child's stderr goes to `child.log` in the data's temp dir,
//! which is kept (and named) when the test fails.

use blackbox::camera::file::jpeg_dimensions;
use blackbox::camera::Codec;
use blackbox::codec::h264;
use blackbox::store::names::SegName;
use blackbox::store::reader::Reader;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_blackbox");

const FPS: u64 = 60;
const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;
const SEGMENT_S: u64 = 1;
/// 0.03 GiB: about seven 4 MiB segments, so retention recycles and deletes every few cycles.
const CAP_GB: f64 = 0.03;
const DEFAULT_CYCLES: u32 = 60;
/// The test gives up on a child that reports nothing for this long in an "at durable" kill.
const AT_DURABLE_TIMEOUT: Duration = Duration::from_secs(4);

fn config_json() -> String {
    format!(
        "{{\"video_res_width\": {WIDTH}, \"video_res_height\": {HEIGHT}, \"video_fps\": {FPS}, \
         \"segment_length_s\": {SEGMENT_S}, \"commit_interval_ms\": 50, \"storage_cap_gb\": {CAP_GB}, \
         \"min_free_mb\": 0}}"
    )
}

/// xorshift64*: small, seedable, good enough to pick kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    if let Ok(s) = std::env::var("BLACKBOX_CRASH_SEED") {
        let s = s.trim();
        let v = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16),
            None => s.parse(),
        };
        return v.expect("BLACKBOX_CRASH_SEED: a decimal or 0x-hex u64");
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (t.as_nanos() as u64 ^ (std::process::id() as u64) << 32) | 1
}

/// When a cycle's child is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// This many ms after spawn: the child is starting, opening the store, recovering.
    Early(u64),
    /// This many ms after spawn: anywhere in a run.
    Timed(u64),
    /// As soon as the child reports a durable seq at or past this one (targets near the
    /// expected segment boundaries).
    AtDurable(u64),
    /// At the first rotation of the segment open at the child's first durable report: that
    /// segment's start (UTC, from its name) + `ms` ms + `us` µs. The synthetic camera paces
    /// frames on absolute deadlines, so the segment rotates when its frame 61 arrives, 1000 ms
    /// or (when the first frame's delivery was late) 1016.7 ms after its start; the rotation
    /// (seal, fdatasync, rename, recycle, header, fdatasync, dir fsync) lasts about a
    /// millisecond, and a kill in it leaves the states `Coverage` counts.
    Rotation { ms: u64, us: i64 },
}

enum Msg {
    Durable(u64),
    Other(String),
}

/// What the child reported before it died.
#[derive(Default)]
struct Reported {
    durable: Vec<u64>,
    other: Vec<String>,
}

impl Reported {
    fn last(&self) -> Option<u64> {
        self.durable.last().copied()
    }
    fn take(&mut self, m: Msg) {
        match m {
            Msg::Durable(s) => self.durable.push(s),
            Msg::Other(l) => self.other.push(l),
        }
    }
}

fn spawn(data: &Path, cfg: &Path, log: &File) -> (Child, Receiver<Msg>, thread::JoinHandle<()>) {
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--data")
        .arg(data)
        .args(["--source", "synthetic", "--config"])
        .arg(cfg)
        .arg("--report-durable")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone().unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {BIN}: {e}"));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let m = match line.strip_prefix("durable ").map(|s| s.trim().parse::<u64>()) {
                Some(Ok(seq)) => Msg::Durable(seq),
                _ => Msg::Other(line),
            };
            if tx.send(m).is_err() {
                break;
            }
        }
    });
    (child, rx, h)
}

/// Waits for `child` at most `limit`; kills it (and says so) when it takes longer.
fn wait_timeout(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(st);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {limit:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs one cycle: spawn, kill at `kill`, reap. Returns what the child reported.
fn run_cycle(data: &Path, cfg: &Path, log: &File, kill: KillAt) -> Result<Reported, String> {
    let (mut child, rx, reader) = spawn(data, cfg, log);
    let t0 = Instant::now();
    let mut rep = Reported::default();
    match kill {
        KillAt::Early(ms) | KillAt::Timed(ms) => {
            let deadline = t0 + Duration::from_millis(ms);
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match rx.recv_timeout(deadline - now) {
                    Ok(m) => rep.take(m),
                    Err(RecvTimeoutError::Timeout) => break,
                    // stdout closed: the child is exiting; the check below reports it.
                    Err(RecvTimeoutError::Disconnected) => {
                        thread::sleep(deadline.saturating_duration_since(Instant::now()));
                        break;
                    }
                }
            }
        }
        KillAt::AtDurable(target) => {
            while let Ok(m) = rx.recv_timeout(AT_DURABLE_TIMEOUT.saturating_sub(t0.elapsed())) {
                let hit = matches!(m, Msg::Durable(s) if s >= target);
                rep.take(m);
                if hit {
                    break;
                }
            }
        }
        KillAt::Rotation { ms, us } => {
            if let Ok(m) = rx.recv_timeout(AT_DURABLE_TIMEOUT) {
                rep.take(m);
                if let Some(start) = newest_open_start(data) {
                    let target = start + ms as i64 * 1_000_000 + us * 1_000;
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
                    if target > now {
                        thread::sleep(Duration::from_nanos((target - now) as u64));
                    }
                }
            }
        }
    }
    // The child must still be running: it records until it is told to stop.
    if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
        let _ = reader.join();
        return Err(format!("the child exited by itself ({st}) before the kill"));
    }
    child.kill().map_err(|e| format!("kill: {e}"))?;
    let st = wait_timeout(&mut child, Duration::from_secs(20)).map_err(|e| format!("killed child: {e}"))?;
    if st.signal() != Some(9) {
        return Err(format!("the child was not ended by SIGKILL but {st}"));
    }
    // Lines the child printed before it died are acknowledgements too: drain them all.
    reader.join().map_err(|_| "stdout reader thread panicked".to_string())?;
    for m in rx.try_iter() {
        rep.take(m);
    }
    Ok(rep)
}

/// The UTC start of the newest `.open` segment, from its name.
fn newest_open_start(data: &Path) -> Option<i64> {
    fs::read_dir(data.join("segments"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| SegName::parse(e.file_name().to_str()?))
        .filter(|n| matches!(n, SegName::Open { .. }))
        .max_by_key(|n| n.first_seq())
        .map(|n| n.start_utc_ns())
}

/// What a kill left in the data dir, before anything recovered it: tells which crash windows
/// the run exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    /// No `.open` file: killed before the first frame, or between a rotation's rename and the
    /// next segment's creation.
    NoOpenSegment,
    /// The previous crash's open segment is still there: killed before or during recovery.
    OldOpenSegment,
    /// An `.open` whose header is not (yet) its own: killed between create/recycle-rename and
    /// the header write.
    HeaderNotWritten,
    /// A new segment with its header and no frame.
    NoFrameYet,
    /// Index and seal written, not renamed: killed in a rotation between seal and rename.
    SealedNotRenamed,
    /// The previous crash's open segment, sealed by recovery but not yet renamed.
    RecoverySealedNotRenamed,
    /// Frames after the last commit record (killed while a group was being written).
    UncommittedTail,
    /// The valid prefix ends on a commit (killed between groups).
    AtCommit,
}

fn crash_state(data: &Path, base: u64) -> Result<State, String> {
    let r = Reader::open(data).map_err(|e| format!("Reader::open: {e}"))?;
    if !r.recovered.empty_open.is_empty() {
        return Ok(State::HeaderNotWritten);
    }
    let Some(seg) = r.recovered.open.last() else { return Ok(State::NoOpenSegment) };
    // A read-only scan accepts a seal only at the end of the valid prefix: look there.
    let mut b = [0u8; 5];
    if seg.used_bytes >= 2 * 4096 {
        let f = File::open(data.join("segments").join(seg.name.as_str())).map_err(|e| e.to_string())?;
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, seg.used_bytes - 4096).map_err(|e| e.to_string())?;
    }
    Ok(if &b[..4] == b"BBXR" && b[4] == 5 && seg.first_seq <= base {
        State::RecoverySealedNotRenamed
    } else if &b[..4] == b"BBXR" && b[4] == 5 {
        State::SealedNotRenamed
    } else if seg.first_seq <= base && seg.frames > 0 {
        State::OldOpenSegment
    } else if seg.frames == 0 {
        State::NoFrameYet
    } else if seg.used_bytes > seg.open_commit_end {
        State::UncommittedTail
    } else {
        State::AtCommit
    })
}

/// `blackbox verify DIR --json`, which must exit 0 (or 3: a store with no frame yet, what a kill
/// between opening the store and its first segment leaves; the checks after it still demand
/// every acknowledged frame); returns its JSON.
fn run_verify(data: &Path) -> Result<serde_json::Value, String> {
    let mut child = Command::new(BIN)
        .arg("verify")
        .arg(data)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot spawn verify: {e}"))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let te = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let st = wait_timeout(&mut child, Duration::from_secs(60)).map_err(|e| format!("verify: {e}"))?;
    let (out, err) = (to.join().unwrap(), te.join().unwrap());
    let empty = st.code() == Some(3) && out.contains("\"empty\":true");
    if !st.success() && !empty {
        return Err(format!("verify exited with {st}\nstdout: {out}\nstderr: {err}"));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("verify --json printed no valid JSON ({e}): {out:?}"))
}

fn json_u64(v: &serde_json::Value, key: &str) -> Result<Option<u64>, String> {
    match v.get(key) {
        None => Err(format!("verify JSON lacks {key:?}: {v}")),
        Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x.as_u64().map(Some).ok_or_else(|| format!("verify JSON {key:?} is not a u64: {x}")),
    }
}

/// What the store holds after a kill, as the library reads it.
struct Seen {
    seqs_first: Option<u64>,
    seqs_last: Option<u64>,
    frames: u64,
    segments: u64,
    /// Bytes allocated by the files in segments/.
    alloc: u64,
}

/// Reads every frame with the library's reader, checks each is a whole JPEG of the configured
/// size, that the seqs form one run without a hole and that capture times (monotonic clock, one
/// boot) increase with the seq across restarts.
fn read_store(data: &Path) -> Result<Seen, String> {
    let r = Reader::open(data).map_err(|e| format!("Reader::open: {e}"))?;
    let segments = r.segments().len() as u64;
    let mut buf = Vec::new();
    let mut first = None;
    let mut last: Option<u64> = None;
    let mut frames = 0u64;
    let mut err: Option<String> = None;
    let mut last_mono = 0u64;
    let bad = r
        .for_each_in_range(i64::MIN, i64::MAX, &mut buf, |info, data| {
            if let Some(l) = last
                && info.seq != l + 1
            {
                err = Some(format!("hole or disorder: frame {} follows frame {l}", info.seq));
                return false;
            }
            if info.codec == Codec::H264 as u8 {
                // A whole AVCC sample: its NAL lengths tile it exactly, and it holds a slice.
                let (mut n, mut slices) = (0usize, 0);
                for nal in h264::avcc_units(data) {
                    n += 4 + nal.len();
                    slices += usize::from(matches!(h264::nal_type(nal), h264::NAL_SLICE | h264::NAL_IDR));
                }
                if n != data.len() || slices == 0 {
                    err = Some(format!("frame {} ({} bytes) is not a whole H.264 access unit", info.seq, data.len()));
                    return false;
                }
            } else {
                if data.len() < 4 || data[..2] != [0xff, 0xd8] || data[data.len() - 2..] != [0xff, 0xd9] {
                    err = Some(format!("frame {} ({} bytes) is not a whole JPEG (FFD8 … FFD9)", info.seq, data.len()));
                    return false;
                }
                if jpeg_dimensions(data) != Some((WIDTH, HEIGHT)) {
                    err = Some(format!("frame {} is not a {WIDTH}x{HEIGHT} JPEG: {:?}", info.seq, jpeg_dimensions(data)));
                    return false;
                }
            }
            if info.mono_ns <= last_mono {
                err = Some(format!("frame {} was captured at mono {} ns, not after its predecessor ({last_mono})", info.seq, info.mono_ns));
                return false;
            }
            last_mono = info.mono_ns;
            first.get_or_insert(info.seq);
            last = Some(info.seq);
            frames += 1;
            true
        })
        .map_err(|e| format!("reading frames: {e}"))?;
    if let Some(e) = err {
        return Err(e);
    }
    if bad != 0 {
        return Err(format!("the reader skipped {bad} damaged frames"));
    }
    // H.264: every segment starts with an IDR and carries its parameter sets, so no stored
    // stream starts on a picture whose reference is missing.
    for seg in r.segments() {
        let Ok(Ok(sf)) = r.load(seg) else { continue };
        if let Some(e) = sf.entries.first()
            && e.codec == Codec::H264 as u8
            && (e.flags & 1 == 0 || h264::params_from_avcc(sf.params()).is_none())
        {
            return Err(format!("H.264 segment {} does not start with an IDR and its parameter sets", seg.name));
        }
    }
    let mut alloc = 0;
    for e in fs::read_dir(data.join("segments")).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        alloc += e.metadata().map_err(|e| e.to_string())?.blocks() * 512;
    }
    Ok(Seen { seqs_first: first, seqs_last: last, frames, segments, alloc })
}

/// Running figures over all cycles.
#[derive(Default)]
struct Totals {
    cycles: u32,
    early: u32,
    timed: u32,
    at_durable: u32,
    at_durable_hit: u32,
    rotation: u32,
    /// How often each crash state was found after a kill.
    states: std::collections::BTreeMap<State, u32>,
    no_ack: u32,
    frames_acked: u64,
    acked_lost: u64,
    /// Per cycle: frames recovered beyond the last acknowledged one (written, never acked).
    beyond_ack: Vec<u64>,
    /// Non-fatal bad regions verify reported (torn or stale tails after the valid prefix).
    torn_tails: u64,
    max_alloc: u64,
}

struct Ctx {
    data: PathBuf,
    cfg: PathBuf,
    log_path: PathBuf,
    cap: u64,
}

/// State carried from one cycle to the next.
#[derive(Default)]
struct Prev {
    /// The last frame the store held after the previous kill (the child resumes after it).
    last_seq: Option<u64>,
    /// The last durable seq any child reported.
    last_durable: Option<u64>,
}

fn cycle(ctx: &Ctx, n: u32, rng: &mut Rng, prev: &mut Prev, tot: &mut Totals) -> Result<(), String> {
    let base = prev.last_seq.unwrap_or(0);
    let per_seg = FPS * SEGMENT_S;
    let kill = match rng.range(0, 9) {
        // Start-up: exec, config, camera set-up, then the store's open and recovery.
        // (here: the store opens some 5-20 ms after the spawn; the first frame follows).
        0 | 1 => KillAt::Early(rng.range(0, 25)),
        2 | 3 => KillAt::Timed(rng.range(25, 1500)),
        // Just before or at the 1st/2nd expected rotation, or anywhere in the first 2.5 s.
        4 => KillAt::AtDurable(base + per_seg * rng.range(1, 2) - rng.range(0, 6)),
        5 => KillAt::AtDurable(base + rng.range(1, per_seg * 5 / 2)),
        _ => KillAt::Rotation {
            ms: if rng.range(0, 3) == 0 { 1016 } else { 1000 },
            us: rng.range(0, 3000) as i64 - 500,
        },
    };
    match kill {
        KillAt::Early(_) => tot.early += 1,
        KillAt::Timed(_) => tot.timed += 1,
        KillAt::AtDurable(_) => tot.at_durable += 1,
        KillAt::Rotation { .. } => tot.rotation += 1,
    }
    {
        let mut log = OpenOptions::new().append(true).open(&ctx.log_path).unwrap();
        writeln!(log, "===== crash_kill cycle {n}: {kill:?} (store ended at seq {base}) =====").unwrap();
    }
    let log = OpenOptions::new().append(true).open(&ctx.log_path).unwrap();
    let rep = run_cycle(&ctx.data, &ctx.cfg, &log, kill)?;
    if let KillAt::AtDurable(t) = kill
        && rep.last().is_some_and(|d| d >= t)
    {
        tot.at_durable_hit += 1;
    }
    if !rep.other.is_empty() {
        eprintln!("cycle {n}: unexpected stdout lines from the child: {:?}", rep.other);
    }

    // 3. Numbering: within a run strictly increasing, and it goes on past the previous run.
    if let Some(w) = rep.durable.windows(2).find(|w| w[1] <= w[0]) {
        return Err(format!("durable watermark went from {} to {} within one run", w[0], w[1]));
    }
    let this_first = base + 1;
    if let Some(&d0) = rep.durable.first() {
        if d0 < this_first {
            return Err(format!("first durable {d0} of this run is not past the recovered store's last frame {base}"));
        }
        if let Some(pd) = prev.last_durable
            && d0 <= pd
        {
            return Err(format!("first durable {d0} of this run is not past the previous run's last durable {pd}"));
        }
    }

    if !ctx.data.join("segments").exists() {
        // Killed before the store was ever opened: nothing to check but that nothing was acked
        // (`verify` refuses a directory that is not a store yet).
        if !rep.durable.is_empty() || prev.last_seq.is_some() {
            return Err("segments/ is missing after acknowledgements".into());
        }
        tot.cycles += 1;
        tot.no_ack += 1;
        println!("cycle {n:3}: {kill:?} -> no store yet");
        return Ok(());
    }
    let state = crash_state(&ctx.data, base)?;
    *tot.states.entry(state).or_default() += 1;
    // 1. verify.
    let v = run_verify(&ctx.data)?;
    // 2. the reader.
    let seen = read_store(&ctx.data)?;
    let acked = rep.last();
    if let Some(d) = acked {
        // Every frame acknowledged by this run (this_first..=d) must be there.
        let lost = match (seen.seqs_first, seen.seqs_last) {
            (Some(f), Some(l)) => {
                // seqs are one run f..=l (checked by read_store); count acked seqs outside it.
                let lo = this_first;
                let below = f.saturating_sub(lo).min(d + 1 - lo);
                let above = d.saturating_sub(l.max(lo - 1));
                below + above
            }
            _ => d + 1 - this_first,
        };
        tot.acked_lost += lost;
        if lost > 0 {
            return Err(format!(
                "{lost} acknowledged frames lost: acked {this_first}..={d}, the store holds {:?}..={:?}",
                seen.seqs_first, seen.seqs_last
            ));
        }
        tot.frames_acked += d + 1 - this_first;
        tot.beyond_ack.push(seen.seqs_last.unwrap() - d);
    } else {
        tot.no_ack += 1;
        tot.beyond_ack.push(seen.seqs_last.unwrap_or(0).saturating_sub(base));
    }
    // Frames never go away except to retention, which only takes whole old segments.
    if let (Some(pl), Some(l)) = (prev.last_seq, seen.seqs_last)
        && l < pl
    {
        return Err(format!("the store ended at seq {pl} before this run and at {l} after it"));
    }
    if prev.last_seq.is_some() && seen.seqs_last.is_none() {
        return Err("the store lost all its frames".into());
    }

    // verify agrees with the reader.
    let (vf, vl, vd) = (json_u64(&v, "first_seq")?, json_u64(&v, "last_seq")?, json_u64(&v, "durable_seq")?);
    let (vframes, vsegs) = (json_u64(&v, "frames")?, json_u64(&v, "segments")?);
    for k in ["start", "end", "bad_regions"] {
        if v.get(k).is_none() {
            return Err(format!("verify JSON lacks {k:?}: {v}"));
        }
    }
    if vf != seen.seqs_first || vl != seen.seqs_last || vframes != Some(seen.frames) || vsegs != Some(seen.segments) {
        return Err(format!(
            "verify says first {vf:?} last {vl:?} frames {vframes:?} segments {vsegs:?}; the reader saw \
             first {:?} last {:?} frames {} segments {}",
            seen.seqs_first, seen.seqs_last, seen.frames, seen.segments
        ));
    }
    if let Some(d) = acked
        && (vl.is_none_or(|l| l < d) || vd.is_none_or(|x| x < d))
    {
        return Err(format!("verify: last_seq {vl:?}, durable_seq {vd:?}, but the child acknowledged {d}"));
    }
    if let Some(arr) = v["bad_regions"].as_array()
        && let Some(b) = arr.iter().find(|b| b.get("fatal").and_then(|f| f.as_bool()) == Some(true))
    {
        return Err(format!("verify exited 0 but reports a fatal bad region: {b}"));
    }
    // Retention keeps recordings under the cap.
    if seen.alloc > ctx.cap {
        return Err(format!("segments/ allocates {} bytes, over the cap of {} bytes", seen.alloc, ctx.cap));
    }
    tot.max_alloc = tot.max_alloc.max(seen.alloc);
    tot.torn_tails += v["bad_regions"].as_array().map_or(0, |a| a.len() as u64);
    tot.cycles += 1;

    let n_ack = rep.durable.len();
    println!(
        "cycle {n:3}: {kill:?} -> {state:?}: {n_ack} acks{}, store {:?}..={:?} ({} frames, {} segments)",
        acked.map_or(String::new(), |d| format!(" ({this_first}..={d})")),
        seen.seqs_first,
        seen.seqs_last,
        seen.frames,
        seen.segments
    );
    prev.last_seq = seen.seqs_last;
    if acked.is_some() {
        prev.last_durable = acked;
    }
    Ok(())
}

/// Counts lines of the child log that show which crash paths were exercised.
fn log_figures(log: &Path) -> Vec<(&'static str, usize)> {
    let text = fs::read_to_string(log).unwrap_or_default();
    [
        ("recovered an open segment", "recovered "),
        ("sealed but not renamed", "was sealed but not renamed"),
        ("open segment without valid header", "no valid header"),
        ("open segment with no frame", "no frame survived"),
        ("recycled", "retention: recycling"),
        ("deleted", "retention: deleted"),
        ("segments started", "started ("),
    ]
    .into_iter()
    .map(|(what, pat)| (what, text.lines().filter(|l| l.contains(pat)).count()))
    .collect()
}

#[test]
fn kill_minus_nine_never_loses_an_acknowledged_frame() {
    let t0 = Instant::now();
    let seed = seed();
    let cycles: u32 = std::env::var("BLACKBOX_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_CYCLES);
    println!("crash_kill: seed {seed:#x} (replay with BLACKBOX_CRASH_SEED={seed:#x}), {cycles} cycles");
    let tmp = tempfile::tempdir().unwrap();
    let ctx = Ctx {
        data: tmp.path().join("data"),
        cfg: tmp.path().join("config.json"),
        log_path: tmp.path().join("child.log"),
        cap: (CAP_GB * (1u64 << 30) as f64) as u64,
    };
    fs::create_dir_all(&ctx.data).unwrap();
    fs::write(&ctx.cfg, config_json()).unwrap();
    File::create(&ctx.log_path).unwrap();
    let mut rng = Rng(seed);
    let mut prev = Prev::default();
    let mut tot = Totals::default();
    let mut failure = None;
    let mut exports = 0;
    for n in 1..=cycles {
        if let Err(e) = cycle(&ctx, n, &mut rng, &mut prev, &mut tot) {
            failure = Some(format!("cycle {n}: {e}"));
            break;
        }
        // Every tenth cut: an export of everything left decodes without an error and starts
        // on a key frame.
        if n % 10 == 0 {
            match export_decodes(&ctx.data, tmp.path()) {
                Ok(true) => exports += 1,
                Ok(false) => {}
                Err(e) => {
                    failure = Some(format!("cycle {n}: export after the cut: {e}"));
                    break;
                }
            }
        }
    }
    println!("crash_kill: {exports} exports made after cuts decoded with ffmpeg -xerror");
    // A clean stop at the end: SIGTERM closes the open segment.
    if failure.is_none()
        && let Err(e) = clean_stop(&ctx, &prev)
    {
        failure = Some(format!("clean stop: {e}"));
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut ba = tot.beyond_ack.clone();
    ba.sort_unstable();
    println!("crash_kill: seed {seed:#x}, {secs:.1} s");
    println!(
        "  cycles {} (early {}, timed {}, at-durable {} of which {} reached their target, at-rotation {}), runs without any ack {}",
        tot.cycles, tot.early, tot.timed, tot.at_durable, tot.at_durable_hit, tot.rotation, tot.no_ack
    );
    println!("  states left by the kills: {:?}", tot.states);
    println!("  frames acked {}, acked frames lost {}", tot.frames_acked, tot.acked_lost);
    if !ba.is_empty() {
        println!(
            "  unacked frames recovered after the last ack, per cycle: min {} median {} max {} (total {})",
            ba[0],
            ba[ba.len() / 2],
            ba[ba.len() - 1],
            ba.iter().sum::<u64>()
        );
    }
    println!("  non-fatal bad regions (torn or stale tails) reported by verify {}, largest segments/ allocation {} bytes (cap {})", tot.torn_tails, tot.max_alloc, ctx.cap);
    for (what, n) in log_figures(&ctx.log_path) {
        println!("  child log: {what}: {n}");
    }
    if let Some(f) = failure {
        let kept = tmp.keep();
        let log = fs::read_to_string(kept.join("child.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("--- last lines of the child log ---");
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
        panic!("{f}\n(seed {seed:#x}; data and child.log kept in {})", kept.display());
    }
    assert!(tot.cycles >= cycles.min(50), "ran only {} cycles", tot.cycles);
}

/// Exports the whole store (read-only, as after a cut) and decodes it with `ffmpeg -xerror`;
/// the first packet must be a key frame. `Ok(false)`: nothing stored yet.
fn export_decodes(data: &Path, tmp: &Path) -> Result<bool, String> {
    let out = tmp.join("after-cut.mp4");
    let o = Command::new(BIN).arg("export").arg(data).arg("-o").arg(&out).output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("no footage") {
            return Ok(false);
        }
        return Err(format!("blackbox export failed: {err}"));
    }
    let d = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(&out)
        .args(["-map", "0:v:0", "-f", "null", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    if !d.status.success() || !d.stderr.is_empty() {
        return Err(format!("ffmpeg -xerror: {}", String::from_utf8_lossy(&d.stderr)));
    }
    let p = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(&out)
        .output()
        .map_err(|e| e.to_string())?;
    let first = String::from_utf8_lossy(&p.stdout).lines().next().unwrap_or("").to_string();
    if !first.starts_with('K') {
        return Err(format!("the export's first packet is not a key frame (flags {first:?})"));
    }
    let _ = fs::remove_file(&out);
    Ok(true)
}

/// SIGTERM after the child has acknowledged something: it must exit 0 and leave only closed
/// segments holding everything it acknowledged.
fn clean_stop(ctx: &Ctx, prev: &Prev) -> Result<(), String> {
    let log = OpenOptions::new().append(true).open(&ctx.log_path).unwrap();
    writeln!(&log, "===== crash_kill: clean stop =====").unwrap();
    let (mut child, rx, reader) = spawn(&ctx.data, &ctx.cfg, &log);
    let mut rep = Reported::default();
    let t0 = Instant::now();
    while rep.durable.len() < 3 && t0.elapsed() < AT_DURABLE_TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => rep.take(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
        return Err(format!("the child exited by itself ({st})"));
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM)
        .map_err(|e| format!("SIGTERM: {e}"))?;
    let st = wait_timeout(&mut child, Duration::from_secs(20))?;
    reader.join().map_err(|_| "stdout reader thread panicked".to_string())?;
    for m in rx.try_iter() {
        rep.take(m);
    }
    if !st.success() {
        return Err(format!("SIGTERM: the child exited with {st}, not 0"));
    }
    let d = rep.last().ok_or("no durable seq reported before SIGTERM")?;
    if let Some(pd) = prev.last_durable
        && d <= pd
    {
        return Err(format!("durable {d} after restart is not past {pd}"));
    }
    let open: Vec<_> = fs::read_dir(ctx.data.join("segments"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".open"))
        .map(|e| e.file_name())
        .collect();
    if !open.is_empty() {
        return Err(format!("segments left open after a clean stop: {open:?}"));
    }
    let v = run_verify(&ctx.data)?;
    let seen = read_store(&ctx.data)?;
    let (l, vd) = (json_u64(&v, "last_seq")?, json_u64(&v, "durable_seq")?);
    if seen.seqs_last.is_none_or(|x| x < d) || l != seen.seqs_last || vd != seen.seqs_last {
        return Err(format!("after a clean stop: acked {d}, reader last {:?}, verify last {l:?} durable {vd:?}", seen.seqs_last));
    }
    println!("clean stop: acked {d}, store ends at {l:?}, every frame durable");
    Ok(())
}
