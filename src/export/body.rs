//! The export as a virtual file: its total size is known before the first byte, and any byte
//! range of it can be produced on demand (HTTP `Range`, resumed downloads, seeking players).
//!
//! Layout (docs/EXPORT.md): `ftyp`, `moov`, then one `mdat` whose payload interleaves, for each
//! second of UTC time, one `tx3g` text sample (held in memory) followed by that second's JPEG
//! frames, which are read from the segment files as they are sent: nothing is copied to disk,
//! memory is one frame plus the sample tables.
//!
//! Every frame is re-read whole and checked (record header CRC, seq, length, payload CRC)
//! before any of its bytes leave: a segment recycled by retention since the plan (new uid), or
//! a record damaged since, stops the stream with an error instead of sending wrong bytes.

use super::mp4::{self, Movie, Track, TIMESCALE};
use super::plan::{self, Frame, Plan};
use crate::camera::Codec;
use crate::clock::IsoSeconds;
use crate::audio::file;
use crate::gps::track::Point;
use crate::store::record::{Kind, RecHeader, REC_HDR};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Samples per AAC access unit: the audio track's sample duration in its own timescale.
const FRAME_SAMPLES: u32 = crate::audio::aac::FRAME as u32;

/// What a run of output bytes after the head is.
#[derive(Clone, Copy, Debug)]
enum Piece {
    /// `len` bytes of `Export::text` from `at`.
    Text { at: u32, len: u32 },
    /// The payload of `Export::frames[i]`.
    Frame(u32),
    /// Audio slot `k` (see `audio::AudioPlan`).
    Audio(u32),
}

/// A planned export: the bytes of the head in memory, the rest described.
pub struct Export {
    /// `ftyp`, `moov` and the `mdat` header.
    head: Vec<u8>,
    /// All text samples, back to back.
    text: Vec<u8>,
    /// Every piece after the head with its offset in the output, in output order.
    pieces: Vec<(u64, Piece)>,
    plan: Plan,
    total: u64,
    duration_ticks: u64,
    /// Where each text sample starts: (tick on the video's media timeline, UTC of its frame).
    clock: Vec<(u64, i64)>,
    /// Ticks of lead-in the edit list hides.
    edit_start: u64,
    /// The sound, when some was recorded for the span.
    audio: Option<super::audio::AudioPlan>,
}

/// Formats the UTC time of the clock track: `2026-11-21 12:00:00 UTC`.
fn clock_text(utc_ns: i64) -> String {
    let iso = IsoSeconds(utc_ns).to_string(); // 2026-11-21T12:00:00Z
    format!("{} UTC", iso.trim_end_matches('Z').replacen('T', " ", 1))
}

/// What the subtitles show besides the time: the config's `speed_unit` and
/// `subtitle_position` (the privacy switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subtitles {
    pub mph: bool,
    pub position: bool,
}

impl Default for Subtitles {
    fn default() -> Self {
        Subtitles { mph: false, position: true }
    }
}

impl Subtitles {
    pub fn of(c: &crate::config::Config) -> Subtitles {
        Subtitles { mph: c.speed_unit == crate::config::SpeedUnit::Mph, position: c.subtitle_position }
    }
}

/// The process's subtitle settings (set at start and by `PUT /api/config`): bit 0 mph,
/// bit 1 no position.
static SUBTITLES: AtomicU8 = AtomicU8::new(0);

/// Sets what exports made from now on show in their subtitles.
pub fn set_subtitles(s: Subtitles) {
    SUBTITLES.store(u8::from(s.mph) | u8::from(!s.position) << 1, Ordering::Relaxed);
}

/// What exports show in their subtitles (see [`set_subtitles`]).
pub fn subtitles() -> Subtitles {
    let v = SUBTITLES.load(Ordering::Relaxed);
    Subtitles { mph: v & 1 != 0, position: v & 2 == 0 }
}

/// The subtitle of the second starting at `utc_ns`: the time, and with a GPS point from the
/// last 2 s, the speed and (unless switched off) the position:
/// `2026-11-21 12:00:00 UTC · 54 km/h · 47.28523° N, 8.56525° E`.
fn subtitle_text(utc_ns: i64, track: &[Point], subs: Subtitles) -> String {
    let clock = clock_text(utc_ns);
    let i = track.partition_point(|p| p.utc_ns <= utc_ns);
    let p = match i.checked_sub(1).map(|k| &track[k]) {
        Some(p) if utc_ns - p.utc_ns <= 2_000_000_000 => p,
        _ => return clock,
    };
    let speed = if subs.mph {
        format!("{:.0} mph", f64::from(p.speed_mps) * 3600.0 / 1609.344)
    } else {
        format!("{:.0} km/h", f64::from(p.speed_mps) * 3.6)
    };
    if !subs.position {
        return format!("{clock} · {speed}");
    }
    format!(
        "{clock} · {speed} · {:.5}° {}, {:.5}° {}",
        p.lat.abs(),
        if p.lat < 0.0 { 'S' } else { 'N' },
        p.lon.abs(),
        if p.lon < 0.0 { 'W' } else { 'E' }
    )
}

impl Export {
    /// Lays out the file for `plan` (normally at least one frame; an empty plan gives a file
    /// with empty tracks).
    pub fn new(plan: Plan) -> Export {
        Export::with_track(plan, &[], Subtitles::default(), None)
    }

    /// Like [`Export::new`], with the GPS track (in time order) for the subtitles.
    /// And with `audio`, the sound (planned for the frames' span by `audio::plan`).
    pub fn with_track(plan: Plan, track: &[Point], subs: Subtitles, audio: Option<super::audio::AudioPlan>) -> Export {
        let frames = &plan.frames;
        let durs = plan::durations_ns(frames);
        // Decode times in ticks, from the summed nanoseconds (no drift from rounding each
        // duration), and never two frames on the same tick.
        let mut dts = Vec::with_capacity(frames.len() + 1);
        let mut acc_ns: u128 = 0;
        let mut prev: Option<u64> = None;
        for d in durs.iter().copied().chain(std::iter::once(0)) {
            let t = ((acc_ns * TIMESCALE as u128 + 500_000_000) / 1_000_000_000) as u64; // nearest tick
            let t = prev.map_or(t, |p| t.max(p + 1));
            dts.push(t);
            prev = Some(t);
            acc_ns += d as u128;
        }
        let total_ticks = *dts.last().unwrap_or(&0);
        let video_durations: Vec<u32> = dts.windows(2).map(|w| (w[1] - w[0]).min(u32::MAX as u64) as u32).collect();

        // Text samples: a new one at every frame whose UTC second differs from the previous
        // frame's. Each lasts until the next one starts (the last: to the end).
        let mut text = Vec::new();
        let mut text_starts: Vec<(usize, u64, u32, u32)> = Vec::new(); // (frame, tick, at, len)
        let mut last_sec = None;
        for (i, f) in frames.iter().enumerate() {
            let sec = f.utc_ns.div_euclid(1_000_000_000);
            if last_sec != Some(sec) {
                let at = text.len();
                mp4::text_sample(&subtitle_text(f.utc_ns, track, subs), &mut text);
                text_starts.push((i, dts[i], at as u32, (text.len() - at) as u32));
                last_sec = Some(sec);
            }
        }
        let text_durations: Vec<u32> = text_starts
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let end = text_starts.get(k + 1).map_or(total_ticks, |n| n.1);
                (end - s.1).min(u32::MAX as u64) as u32
            })
            .collect();

        // Pieces in output order, relative to the start of the mdat payload.
        let mut pieces = Vec::with_capacity(frames.len() + text_starts.len());
        let mut video = Track { durations: video_durations, sizes: Vec::with_capacity(frames.len()), chunks: Vec::new() };
        let mut text_track = Track { durations: text_durations, sizes: Vec::new(), chunks: Vec::new() };
        let mut off = 0u64;
        let mut next_text = 0;
        // Sound interleaved: before each frame, the slots that start up to 0.5 s after it, so a
        // player streaming the file finds both near each other.
        let mut sound = audio.as_ref().map(|a| Track { durations: vec![FRAME_SAMPLES; a.slots.len()], sizes: Vec::with_capacity(a.slots.len()), chunks: Vec::new() });
        let mut next_slot = 0usize;
        let mut last_was_frame = false;
        let mut push_audio = |until: i64, off: &mut u64, pieces: &mut Vec<(u64, Piece)>, sound: &mut Option<Track>, last_was_frame: &mut bool| {
            let (Some(a), Some(t)) = (audio.as_ref(), sound.as_mut()) else { return };
            let mut fresh = true;
            while next_slot < a.slots.len() && a.slot_utc(next_slot) <= until {
                let len = a.slot_len(next_slot);
                if fresh {
                    t.chunks.push((*off, 0));
                    fresh = false;
                }
                pieces.push((*off, Piece::Audio(next_slot as u32)));
                t.sizes.push(len);
                if let Some(c) = t.chunks.last_mut() {
                    c.1 += 1;
                }
                *off += u64::from(len);
                *last_was_frame = false;
                next_slot += 1;
            }
        };
        for (i, f) in frames.iter().enumerate() {
            push_audio(f.utc_ns.saturating_add(500_000_000), &mut off, &mut pieces, &mut sound, &mut last_was_frame);
            if let Some(&(fi, _, at, len)) = text_starts.get(next_text)
                && fi == i
            {
                pieces.push((off, Piece::Text { at, len }));
                text_track.sizes.push(len);
                text_track.chunks.push((off, 1));
                off += len as u64;
                next_text += 1;
                last_was_frame = false;
            }
            if !last_was_frame {
                video.chunks.push((off, 0));
            }
            pieces.push((off, Piece::Frame(i as u32)));
            video.sizes.push(f.len);
            if let Some(c) = video.chunks.last_mut() {
                c.1 += 1;
            }
            off += f.len as u64;
            last_was_frame = true;
        }
        push_audio(i64::MAX, &mut off, &mut pieces, &mut sound, &mut last_was_frame);
        let mdat_payload = off;

        let lead_in = plan.lead_in.min(frames.len());
        let first_utc = frames.get(lead_in).map_or(0, |f| f.utc_ns);
        let created = mp4::EPOCH_1904.saturating_add_signed(first_utc.div_euclid(1_000_000_000));
        let avc = plan.codec == Codec::H264;
        let (entry, sync) = if avc {
            let sync = frames.iter().enumerate().filter(|(_, f)| f.key).map(|(i, _)| i as u32 + 1).collect();
            (mp4::VideoEntry::Avc(plan.avcc.clone()), Some(sync))
        } else {
            (mp4::VideoEntry::Mjpeg, None)
        };
        let edit_start = dts[lead_in];
        let mut movie = Movie {
            created_1904: created,
            width: plan.width,
            height: plan.height,
            entry,
            sync,
            edit_start,
            video,
            text: text_track,
            audio: audio.as_ref().zip(sound).map(|(a, track)| mp4::Audio { rate: a.rate, asc: a.asc.clone(), track, media_start: a.media_start }),
        };
        // The moov's size depends on the offsets only through stco vs co64: build it once to
        // learn where the mdat payload starts, then again with the real offsets.
        let ftyp = mp4::ftyp(avc);
        let probe = mp4::moov(&movie, false);
        let mut base = ftyp.len() as u64 + probe.len() as u64 + mp4::MDAT_HEADER;
        let co64 = base + mdat_payload > u32::MAX as u64;
        if co64 {
            base = ftyp.len() as u64 + mp4::moov(&movie, true).len() as u64 + mp4::MDAT_HEADER;
        }
        for t in [Some(&mut movie.video), Some(&mut movie.text), movie.audio.as_mut().map(|a| &mut a.track)].into_iter().flatten() {
            for c in &mut t.chunks {
                c.0 += base;
            }
        }
        let moov = mp4::moov(&movie, co64);
        debug_assert_eq!(ftyp.len() as u64 + moov.len() as u64 + mp4::MDAT_HEADER, base);
        let mut head = ftyp;
        head.extend_from_slice(&moov);
        head.extend_from_slice(&mp4::mdat_header(mdat_payload));
        for p in &mut pieces {
            p.0 += base;
        }
        let clock = text_starts.iter().map(|&(i, tick, _, _)| (tick, frames[i].utc_ns)).collect();
        Export { head, text, pieces, plan, total: base + mdat_payload, duration_ticks: total_ticks - edit_start, clock, edit_start, audio }
    }

    /// Total size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Never true: even an empty plan has an `ftyp` and a `moov`.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn frames(&self) -> usize {
        self.plan.frames.len()
    }

    /// Seconds of sound in the export (its audio track's length; 0 without one), and the
    /// stored access units in it.
    pub fn audio_seconds(&self) -> (f64, u64) {
        self.audio.as_ref().map_or((0.0, 0), |a| ((a.slots.len() * FRAME_SAMPLES as usize) as f64 / f64::from(a.rate), a.placed))
    }

    /// Frames of the range left out because they were damaged at plan time.
    pub fn skipped(&self) -> u64 {
        self.plan.skipped
    }

    /// Playing time in ns.
    pub fn duration_ns(&self) -> u64 {
        (self.duration_ticks as u128 * 1_000_000_000 / TIMESCALE as u128) as u64
    }

    /// (presentation time in s, UTC ns) at each UTC second of the footage, in file order:
    /// what maps a player's `currentTime` back to the time of capture.
    pub fn clock_points(&self) -> impl Iterator<Item = (f64, i64)> + '_ {
        self.clock.iter().map(|&(tick, utc)| (tick.saturating_sub(self.edit_start) as f64 / TIMESCALE as f64, utc))
    }

    /// The codec of the video track.
    pub fn codec(&self) -> Codec {
        self.plan.codec
    }

    /// The RFC 6381 codec string of the video track (`avc1.42C01F`, `mp4v.6C`).
    pub fn codec_string(&self) -> String {
        match self.plan.codec {
            Codec::H264 => crate::codec::h264::params_from_avcc(&self.plan.avcc)
                .and_then(|p| p.parsed())
                .map_or_else(|| "avc1".to_string(), |s| s.rfc6381().to_string()),
            Codec::Jpeg => "mp4v.6C".to_string(),
            // Never planned (plan::select refuses FWHT segments).
            Codec::Fwht => "fwht".to_string(),
        }
    }

    /// Frames of the range left out because they were recorded with other settings.
    pub fn other_codec(&self) -> u64 {
        self.plan.other_codec
    }

    /// UTC capture time of the first and the last frame shown (after any H.264 lead-in).
    pub fn utc_span(&self) -> (i64, i64) {
        let f = &self.plan.frames;
        let first = f.get(self.plan.lead_in).or(f.first()).map_or(0, |x| x.utc_ns);
        let last = f.last().map_or(0, |x| x.utc_ns);
        (first, last)
    }

    /// A file name for the export: `blackbox_20261121T120000Z_20261121T121500Z.mp4`.
    pub fn file_name(&self) -> String {
        let (a, b) = self.utc_span();
        let c = |t: i64| IsoSeconds(t).to_string().replace(['-', ':'], "");
        format!("blackbox_{}_{}.mp4", c(a), c(b))
    }

    /// The first `n` bytes held in memory (ftyp, moov, mdat header); for tests and tools.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// A reader of bytes `start..end` of the file (clamped to its size).
    pub fn range(self: &Arc<Self>, start: u64, end: u64) -> ExportReader {
        let end = end.min(self.total);
        ExportReader { ex: Arc::clone(self), pos: start.min(end), end, loaded: None, buf: Vec::new(), aloaded: None, abuf: Vec::new() }
    }

    /// The whole file.
    pub fn reader(self: &Arc<Self>) -> ExportReader {
        self.range(0, self.total)
    }
}

/// Streams a byte range of an [`Export`]. Holds one frame record in memory at a time.
/// `Send`: the web side may run it on a blocking thread.
pub struct ExportReader {
    ex: Arc<Export>,
    pos: u64,
    end: u64,
    /// The frame whose record is in `buf` (checked).
    loaded: Option<u32>,
    buf: Vec<u8>,
    /// The audio slot whose access unit is in `abuf` (checked).
    aloaded: Option<u32>,
    abuf: Vec<u8>,
}

impl ExportReader {
    /// The next bytes of the range, borrowed (no copy); empty at the end. An error means the
    /// footage changed under the export (see the module doc): stop sending.
    pub fn next_chunk(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.end {
            return Ok(&[]);
        }
        let ex = &*self.ex;
        let head = ex.head.len() as u64;
        if self.pos < head {
            let to = self.end.min(head);
            let s = &ex.head[self.pos as usize..to as usize];
            self.pos = to;
            return Ok(s);
        }
        let k = ex.pieces.partition_point(|p| p.0 <= self.pos) - 1;
        let (start, piece) = ex.pieces[k];
        let within = (self.pos - start) as usize;
        let (bytes, piece_len): (&[u8], u64) = match piece {
            Piece::Text { at, len } => (&ex.text[at as usize..(at + len) as usize], len as u64),
            Piece::Frame(i) => {
                if self.loaded != Some(i) {
                    self.loaded = None;
                    load_frame(ex, i, &mut self.buf)?;
                    self.loaded = Some(i);
                }
                let f = &ex.plan.frames[i as usize];
                (&self.buf[REC_HDR..REC_HDR + f.len as usize], f.len as u64)
            }
            Piece::Audio(k) => {
                let a = ex.audio.as_ref().ok_or_else(|| io::Error::other("no audio plan"))?;
                if a.slots[k as usize] == super::audio::SILENT {
                    (&a.silent[..], a.silent.len() as u64)
                } else {
                    if self.aloaded != Some(k) {
                        self.aloaded = None;
                        load_audio(ex, k, &mut self.abuf)?;
                        self.aloaded = Some(k);
                    }
                    (&self.abuf[..], self.abuf.len() as u64)
                }
            }
        };
        let take = (piece_len - within as u64).min(self.end - self.pos) as usize;
        self.pos += take as u64;
        Ok(&bytes[within..within + take])
    }

    /// Makes sure the next chunk is in memory (reads and checks the frame it falls in), so
    /// that the following `next_chunk` does no I/O. Async callers run this on a blocking
    /// thread. An error means what it means for `next_chunk`.
    pub fn prefetch(&mut self) -> io::Result<()> {
        let ex = &*self.ex;
        if self.pos >= self.end || self.pos < ex.head.len() as u64 {
            return Ok(());
        }
        let k = ex.pieces.partition_point(|p| p.0 <= self.pos) - 1;
        match ex.pieces[k] {
            (_, Piece::Frame(i)) if self.loaded != Some(i) => {
                self.loaded = None;
                load_frame(ex, i, &mut self.buf)?;
                self.loaded = Some(i);
            }
            (_, Piece::Audio(a)) if self.aloaded != Some(a) && ex.audio.as_ref().is_some_and(|p| p.slots[a as usize] != super::audio::SILENT) => {
                self.aloaded = None;
                load_audio(ex, a, &mut self.abuf)?;
                self.aloaded = Some(a);
            }
            _ => {}
        }
        Ok(())
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }
}

/// Reads audio slot `k`'s access unit into `buf`, checked against its CRC.
fn load_audio(ex: &Export, k: u32, buf: &mut Vec<u8>) -> io::Result<()> {
    let a = ex.audio.as_ref().ok_or_else(|| io::Error::other("no audio plan"))?;
    let au = &a.scan.aus[a.slots[k as usize] as usize];
    file::read_au(&a.scan, au, buf).inspect_err(|e| log::error!("export: audio: {e}; export stopped"))?;
    if buf.len() != usize::from(au.len) {
        return Err(io::Error::other("an audio record changed under the export"));
    }
    Ok(())
}

/// Reads frame `i`'s whole record into `buf` and checks that it is still the frame planned.
fn load_frame(ex: &Export, i: u32, buf: &mut Vec<u8>) -> io::Result<()> {
    let f: &Frame = &ex.plan.frames[i as usize];
    let src = &ex.plan.segments[f.seg as usize];
    let n = REC_HDR + f.len as usize;
    buf.clear();
    buf.resize(n, 0);
    let read = src.frames.file().read_exact_at(buf, f.offset);
    let uid = src.frames.uid();
    let ok = read.is_ok()
        && RecHeader::decode(&buf[..REC_HDR], uid).is_some_and(|h| {
            h.kind == Kind::Frame && h.seq == f.seq && h.len == f.len && h.payload_ok(uid, &buf[REC_HDR..])
        });
    if ok {
        return Ok(());
    }
    let why = match read {
        Err(e) => format!("read error: {e}"),
        Ok(()) => "it no longer matches the export (segment recycled by retention, or damaged)".to_string(),
    };
    log::error!("export: segment {}: frame {}: {why}; export stopped", src.name, f.seq);
    Err(io::Error::other(format!("segment {}: frame {}: {why}", src.name, f.seq)))
}

impl Read for ExportReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let chunk = self.next_chunk()?;
        let n = chunk.len().min(out.len());
        out[..n].copy_from_slice(&chunk[..n]);
        // Give back what did not fit: the next call continues from there.
        let unread = (chunk.len() - n) as u64;
        self.pos -= unread;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::{clock_text, subtitle_text, Export, ExportReader, Point, Subtitles};

    #[test]
    fn exports_and_their_readers_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Export>();
        send::<ExportReader>();
    }

    #[test]
    fn an_empty_plan_is_a_valid_empty_file_not_a_panic() {
        use std::io::Read;
        let p = crate::export::plan::Plan::empty();
        let ex = std::sync::Arc::new(Export::new(p));
        let mut all = Vec::new();
        ex.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, ex.len());
        assert_eq!(ex.head().len() as u64, ex.len());
        assert_eq!(ex.duration_ns(), 0);
    }

    #[test]
    fn gps_subtitles_within_2_s() {
        let t = 1_795_000_000_000_000_000;
        let p = Point { utc_ns: t - 500_000_000, lat: -33.85678, lon: 151.21529, speed_mps: 15.0, course_deg: None, altitude_m: None, satellites: 5 };
        let d = Subtitles::default();
        assert_eq!(subtitle_text(t, &[p], d), "2026-11-18 11:06:40 UTC · 54 km/h · 33.85678° S, 151.21529° E");
        assert_eq!(subtitle_text(t + 3_000_000_000, &[p], d), "2026-11-18 11:06:43 UTC", "a stale point is not shown");
        assert_eq!(subtitle_text(t - 1_000_000_000, &[p], d), "2026-11-18 11:06:39 UTC", "nor a later one");
        // 15 m/s is 33.55 mph; the privacy switch drops the position, not the speed.
        let mph = Subtitles { mph: true, position: true };
        assert_eq!(subtitle_text(t, &[p], mph), "2026-11-18 11:06:40 UTC · 34 mph · 33.85678° S, 151.21529° E");
        let private = Subtitles { mph: false, position: false };
        assert_eq!(subtitle_text(t, &[p], private), "2026-11-18 11:06:40 UTC · 54 km/h");
    }

    #[test]
    fn clock_text_reads_like_a_dash_cam_overlay() {
        assert_eq!(clock_text(1_795_000_000_123_000_000), "2026-11-18 11:06:40 UTC");
    }
}
