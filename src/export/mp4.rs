//! ISO BMFF (MP4) boxes for an export: `ftyp`, and a `moov` with one video track (H.264 as
//! `avc1`/`avcC` with an `stss` of its IDRs, or Motion JPEG as `mp4v`), one `tx3g`
//! timed-text track and, when sound was recorded, an AAC-LC `mp4a` audio track. Pure: everything is computed from sample sizes, durations
//! and chunk offsets; the sample bytes themselves are never touched here (docs/EXPORT.md).

/// Ticks per second of every timescale in the file (movie, video, text). 120 Hz: fine enough
/// for any camera rate up to 120 fps (8.3 ms per tick), and coarse enough that ffmpeg takes
/// it as the stream's frame rate. With 90 kHz, a real camera's jittery intervals make ffmpeg
/// fall back to the *average* rate as its output time base, where two frames closer than the
/// average interval collide: `-f null` reports "non monotonically increasing dts" and a
/// transcode drops those frames (docs/EXPORT.md, "Timing and gaps").
pub const TIMESCALE: u32 = 120;
/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
pub const EPOCH_1904: u64 = 2_082_844_800;
/// Size of the `mdat` box header (64-bit size form).
pub const MDAT_HEADER: u64 = 16;

const VIDEO_TRACK: u32 = 1;
const TEXT_TRACK: u32 = 2;
const AUDIO_TRACK: u32 = 3;

/// One track's sample table inputs.
#[derive(Default)]
pub struct Track {
    /// Per-sample duration in ticks.
    pub durations: Vec<u32>,
    /// Per-sample size in bytes.
    pub sizes: Vec<u32>,
    /// Chunks in file order: (offset of the first sample in the output file, samples).
    pub chunks: Vec<(u64, u32)>,
}

impl Track {
    pub fn duration(&self) -> u64 {
        self.durations.iter().map(|&d| d as u64).sum()
    }
}

/// How the video samples are coded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoEntry {
    /// Every sample a complete JPEG: `mp4v` with objectTypeIndication 0x6C.
    Mjpeg,
    /// H.264 samples in AVCC framing; the `avcC` record.
    Avc(Vec<u8>),
}

/// Everything the `moov` says besides the two tracks' tables.
pub struct Movie {
    /// Capture time of the first frame, seconds since 1904 (`creation_time`).
    pub created_1904: u64,
    pub width: u16,
    pub height: u16,
    pub entry: VideoEntry,
    /// 1-based numbers of the video's sync samples (`stss`); `None`: every sample is one.
    pub sync: Option<Vec<u32>>,
    /// Ticks of media before the presentation starts (the H.264 lead-in from the key frame
    /// before `from`): both tracks' edit lists skip them.
    pub edit_start: u64,
    pub video: Track,
    pub text: Track,
    pub audio: Option<Audio>,
}

/// The audio track: AAC-LC access units of 1024 samples, its media timescale the sample rate.
pub struct Audio {
    pub rate: u32,
    /// AudioSpecificConfig.
    pub asc: Vec<u8>,
    /// Durations (in samples), sizes and chunks of the access units.
    pub track: Track,
    /// Samples of media before the presentation starts (the edit list skips them).
    pub media_start: u64,
}

/// A growing byte buffer with big-endian writers and box nesting.
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// Starts a box; returns its position for `end`.
    fn begin(&mut self, typ: &[u8; 4]) -> usize {
        let at = self.0.len();
        self.u32(0);
        self.bytes(typ);
        at
    }
    /// Starts a full box (version, flags).
    fn full(&mut self, typ: &[u8; 4], version: u8, flags: u32) -> usize {
        let at = self.begin(typ);
        self.u32((version as u32) << 24 | (flags & 0x00FF_FFFF));
        at
    }
    /// Ends the box started at `at` by writing its size. Boxes inside `moov` stay far below
    /// 4 GiB (a few bytes per frame), so the 32-bit size always fits.
    fn end(&mut self, at: usize) {
        let size = (self.0.len() - at) as u32;
        self.0[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    /// The unity transformation matrix of `mvhd` and `tkhd`.
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// The `ftyp` box: ISO base media, MP4 v1 compatible (what ffmpeg writes for Motion JPEG);
/// `avc1` added for H.264 (what ffmpeg and Moonfire write).
pub fn ftyp(avc: bool) -> Vec<u8> {
    let mut w = W(Vec::new());
    let b = w.begin(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    w.bytes(b"isom");
    w.bytes(b"iso2");
    if avc {
        w.bytes(b"avc1");
    }
    w.bytes(b"mp41");
    w.end(b);
    w.0
}

/// The header of an `mdat` holding `payload` bytes (always the 64-bit form, 16 bytes).
pub fn mdat_header(payload: u64) -> [u8; MDAT_HEADER as usize] {
    let mut h = [0u8; MDAT_HEADER as usize];
    h[0..4].copy_from_slice(&1u32.to_be_bytes());
    h[4..8].copy_from_slice(b"mdat");
    h[8..16].copy_from_slice(&(payload + MDAT_HEADER).to_be_bytes());
    h
}

/// Whether chunk offsets need `co64` (any offset beyond 4 GiB).
fn needs_co64(t: &Track) -> bool {
    t.chunks.iter().any(|&(off, _)| off > u32::MAX as u64)
}

/// The `moov` box. Its size depends on the chunk offsets only through the choice of `stco`
/// or `co64`, which callers fix by building it twice (see `body.rs`).
pub fn moov(m: &Movie, force_co64: bool) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(4096 + m.video.sizes.len() * 12 + m.text.sizes.len() * 20));
    let duration = m.video.duration().max(m.text.duration()).saturating_sub(m.edit_start);
    let moov = w.begin(b"moov");
    let mvhd = w.full(b"mvhd", 1, 0);
    w.u64(m.created_1904);
    w.u64(m.created_1904);
    w.u32(TIMESCALE);
    w.u64(duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    w.matrix();
    w.zeros(24); // pre_defined
    w.u32(if m.audio.is_some() { AUDIO_TRACK + 1 } else { TEXT_TRACK + 1 }); // next_track_ID
    w.end(mvhd);
    trak(&mut w, m, VIDEO_TRACK, &m.video, duration, force_co64);
    trak(&mut w, m, TEXT_TRACK, &m.text, duration, force_co64);
    if let Some(a) = &m.audio {
        trak(&mut w, m, AUDIO_TRACK, &a.track, duration, force_co64);
    }
    w.end(moov);
    w.0
}

fn trak(w: &mut W, m: &Movie, id: u32, t: &Track, movie_duration: u64, force_co64: bool) {
    let video = id == VIDEO_TRACK;
    let audio = if id == AUDIO_TRACK { m.audio.as_ref() } else { None };
    // The media's timescale, where the presentation starts in it, and how long it plays (in
    // the movie's ticks, at most the movie's duration).
    let (timescale, media_start, edit_duration) = match audio {
        Some(a) => {
            let playable = t.duration().saturating_sub(a.media_start) as u128 * TIMESCALE as u128 / a.rate.max(1) as u128;
            (a.rate, a.media_start, (playable as u64).min(movie_duration))
        }
        None => (TIMESCALE, m.edit_start, t.duration().saturating_sub(m.edit_start)),
    };
    let trak = w.begin(b"trak");
    // tkhd: enabled | in movie | in preview.
    let tkhd = w.full(b"tkhd", 1, 7);
    w.u64(m.created_1904);
    w.u64(m.created_1904);
    w.u32(id);
    w.u32(0);
    w.u64(movie_duration);
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if audio.is_some() { 0x0100 } else { 0 }); // volume: 1.0 for audio
    w.u16(0);
    w.matrix();
    // Width and height, 16.16 fixed point: the picture for video, the same box for the text,
    // none for sound.
    let (tw, th) = if audio.is_some() { (0, 0) } else { (m.width as u32, m.height as u32) };
    w.u32(tw << 16);
    w.u32(th << 16);
    w.end(tkhd);
    // One edit: the media from `edit_start` (0 unless H.264 needed a lead-in) to its end, so
    // players start both tracks together, at the first frame asked for.
    let edts = w.begin(b"edts");
    let elst = w.full(b"elst", 1, 0);
    w.u32(1);
    w.u64(edit_duration);
    w.u64(media_start);
    w.u32(0x0001_0000);
    w.end(elst);
    w.end(edts);
    let mdia = w.begin(b"mdia");
    let mdhd = w.full(b"mdhd", 1, 0);
    w.u64(m.created_1904);
    w.u64(m.created_1904);
    w.u32(timescale);
    w.u64(t.duration());
    w.u16(0x55C4); // language "und"
    w.u16(0);
    w.end(mdhd);
    let hdlr = w.full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(if video { b"vide" } else if audio.is_some() { b"soun" } else { b"sbtl" });
    w.zeros(12);
    w.bytes(if video { b"VideoHandler\0" } else if audio.is_some() { b"SoundHandler\0" } else { b"SubtitleHandler\0" });
    w.end(hdlr);
    let minf = w.begin(b"minf");
    if video {
        let vmhd = w.full(b"vmhd", 0, 1);
        w.zeros(8);
        w.end(vmhd);
    } else if audio.is_some() {
        let smhd = w.full(b"smhd", 0, 0);
        w.zeros(4); // balance, reserved
        w.end(smhd);
    } else {
        let nmhd = w.full(b"nmhd", 0, 0);
        w.end(nmhd);
    }
    let dinf = w.begin(b"dinf");
    let dref = w.full(b"dref", 0, 0);
    w.u32(1);
    let url = w.full(b"url ", 0, 1); // flag 1: the data is in this file
    w.end(url);
    w.end(dref);
    w.end(dinf);
    let stbl = w.begin(b"stbl");
    let stsd = w.full(b"stsd", 0, 0);
    w.u32(1);
    match (&m.entry, video, audio) {
        (VideoEntry::Mjpeg, true, _) => mp4v_entry(w, m.width, m.height, id),
        (VideoEntry::Avc(avcc), true, _) => avc1_entry(w, m.width, m.height, avcc),
        (_, false, Some(a)) => mp4a_entry(w, a, id),
        (_, false, None) => tx3g_entry(w),
    }
    w.end(stsd);
    stts(w, &t.durations);
    if video && let Some(sync) = &m.sync {
        let b = w.full(b"stss", 0, 0);
        w.u32(sync.len() as u32);
        for &n in sync {
            w.u32(n);
        }
        w.end(b);
    }
    stsc(w, &t.chunks);
    let stsz = w.full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(t.sizes.len() as u32);
    for &s in &t.sizes {
        w.u32(s);
    }
    w.end(stsz);
    if force_co64 || needs_co64(t) {
        let co = w.full(b"co64", 0, 0);
        w.u32(t.chunks.len() as u32);
        for &(off, _) in &t.chunks {
            w.u64(off);
        }
        w.end(co);
    } else {
        let co = w.full(b"stco", 0, 0);
        w.u32(t.chunks.len() as u32);
        for &(off, _) in &t.chunks {
            w.u32(off as u32);
        }
        w.end(co);
    }
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
}

/// Run-length coded sample durations.
fn stts(w: &mut W, durations: &[u32]) {
    let b = w.full(b"stts", 0, 0);
    let count_at = w.0.len();
    w.u32(0);
    let mut runs = 0u32;
    let mut i = 0;
    while i < durations.len() {
        let d = durations[i];
        let n = durations[i..].iter().take_while(|&&x| x == d).count();
        w.u32(n as u32);
        w.u32(d);
        runs += 1;
        i += n;
    }
    w.0[count_at..count_at + 4].copy_from_slice(&runs.to_be_bytes());
    w.end(b);
}

/// Sample-to-chunk: one entry per run of chunks with the same number of samples.
fn stsc(w: &mut W, chunks: &[(u64, u32)]) {
    let b = w.full(b"stsc", 0, 0);
    let count_at = w.0.len();
    w.u32(0);
    let mut entries = 0u32;
    let mut prev = None;
    for (i, &(_, n)) in chunks.iter().enumerate() {
        if prev != Some(n) {
            w.u32(i as u32 + 1);
            w.u32(n);
            w.u32(1); // sample description index
            entries += 1;
            prev = Some(n);
        }
    }
    w.0[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
    w.end(b);
}

/// A descriptor header of the MPEG-4 systems layer: tag and a 4-byte length.
fn descriptor(w: &mut W, tag: u8, len: u32) {
    w.u8(tag);
    w.u8(0x80 | (len >> 21) as u8 & 0x7F);
    w.u8(0x80 | (len >> 14) as u8 & 0x7F);
    w.u8(0x80 | (len >> 7) as u8 & 0x7F);
    w.u8(len as u8 & 0x7F);
}

/// `mp4v` sample entry whose `esds` says objectTypeIndication 0x6C: ISO/IEC 10918-1 (JPEG).
/// Every sample is one complete JPEG image.
fn mp4v_entry(w: &mut W, width: u16, height: u16, es_id: u32) {
    let e = w.begin(b"mp4v");
    visual_entry_fields(w, width, height, b"Motion JPEG");
    let esds = w.full(b"esds", 0, 0);
    // ES_Descriptor(3) { ES_ID, flags, DecoderConfigDescriptor(4) {...}, SLConfigDescriptor(6) }
    descriptor(w, 3, 3 + (5 + 13) + (5 + 1));
    w.u16(es_id as u16);
    w.u8(0);
    descriptor(w, 4, 13);
    w.u8(0x6C); // objectTypeIndication: JPEG
    w.u8(0x04 << 2 | 1); // streamType visual, upStream 0, reserved 1
    w.0.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    w.u32(0); // maxBitrate
    w.u32(0); // avgBitrate
    descriptor(w, 6, 1);
    w.u8(2); // predefined: MP4 file
    w.end(esds);
    w.end(e);
}

/// The VisualSampleEntry fields shared by `mp4v` and `avc1`, up to `depth`/`pre_defined`.
fn visual_entry_fields(w: &mut W, width: u16, height: u16, label: &[u8]) {
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(16); // pre_defined, reserved
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // 72 dpi
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame_count
    let mut name = [0u8; 32];
    name[0] = label.len() as u8;
    name[1..1 + label.len()].copy_from_slice(label);
    w.bytes(&name);
    w.u16(0x0018); // depth
    w.u16(0xFFFF); // pre_defined = -1
}

/// `avc1` sample entry with its `avcC` (ISO/IEC 14496-15): the parameter sets live here, the
/// samples carry only the pictures' NAL units with 4-byte lengths.
fn avc1_entry(w: &mut W, width: u16, height: u16, avcc: &[u8]) {
    let e = w.begin(b"avc1");
    visual_entry_fields(w, width, height, b"H.264");
    let c = w.begin(b"avcC");
    w.bytes(avcc);
    w.end(c);
    w.end(e);
}

/// `mp4a` sample entry: mono AAC, its AudioSpecificConfig in the `esds` (objectTypeIndication
/// 0x40, MPEG-4 audio).
fn mp4a_entry(w: &mut W, a: &Audio, es_id: u32) {
    let e = w.begin(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8); // version, revision, vendor
    w.u16(1); // channelcount
    w.u16(16); // samplesize
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    w.u32(a.rate.min(65_535) << 16); // samplerate, 16.16
    let esds = w.full(b"esds", 0, 0);
    let asc = a.asc.len() as u32;
    descriptor(w, 3, 3 + (5 + 13 + 5 + asc) + (5 + 1));
    w.u16(es_id as u16);
    w.u8(0);
    descriptor(w, 4, 13 + 5 + asc);
    w.u8(0x40); // objectTypeIndication: MPEG-4 audio
    w.u8(0x05 << 2 | 1); // streamType audio, upStream 0, reserved 1
    w.0.extend_from_slice(&[0, 0x03, 0]); // bufferSizeDB: 768, the largest mono access unit
    let sizes = &a.track.sizes;
    let secs = (sizes.len() as u64 * 1024).max(1) as f64 / f64::from(a.rate.max(1));
    let avg = (sizes.iter().map(|&s| u64::from(s)).sum::<u64>() as f64 * 8.0 / secs) as u32;
    w.u32(avg.max(1) * 2); // maxBitrate (an estimate: twice the average)
    w.u32(avg);
    descriptor(w, 5, asc);
    w.bytes(&a.asc);
    descriptor(w, 6, 1);
    w.u8(2); // predefined: MP4 file
    w.end(esds);
    w.end(e);
}

/// `tx3g` sample entry: white text on a transparent background, centred at the bottom.
fn tx3g_entry(w: &mut W) {
    let e = w.begin(b"tx3g");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.u32(0); // displayFlags
    w.u8(1); // horizontal justification: centre
    w.u8(0xFF); // vertical justification: bottom
    w.bytes(&[0, 0, 0, 0]); // background RGBA: transparent
    w.zeros(8); // default text box (top, left, bottom, right): the whole track
    // Default style: chars 0..0, font 1, plain, 18 px, opaque white.
    w.u16(0);
    w.u16(0);
    w.u16(1);
    w.u8(0);
    w.u8(18);
    w.bytes(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let ftab = w.begin(b"ftab");
    w.u16(1);
    w.u16(1);
    let font = b"Sans-Serif";
    w.u8(font.len() as u8);
    w.bytes(font);
    w.end(ftab);
    w.end(e);
}

/// One `tx3g` text sample: a 16-bit length and the UTF-8 text.
pub fn text_sample(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(b: &[u8]) -> Vec<(String, usize)> {
        let mut v = Vec::new();
        let mut at = 0;
        while at + 8 <= b.len() {
            let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            v.push((String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(), size));
            assert!(size >= 8, "box size {size}");
            at += size;
        }
        assert_eq!(at, b.len(), "boxes do not tile their parent");
        v
    }

    fn movie(offset: u64) -> Movie {
        Movie {
            created_1904: EPOCH_1904 + 1_795_000_000,
            width: 320,
            height: 240,
            entry: VideoEntry::Mjpeg,
            sync: None,
            edit_start: 0,
            video: Track { durations: vec![3000, 3000, 3003], sizes: vec![10, 20, 30], chunks: vec![(offset, 3)] },
            text: Track { durations: vec![9003], sizes: vec![25], chunks: vec![(offset - 25, 1)] },
            audio: None,
        }
    }

    #[test]
    fn moov_boxes_tile_and_size_is_independent_of_offsets_until_co64() {
        let a = moov(&movie(1000), false);
        let b = moov(&movie(4000), false);
        assert_eq!(a.len(), b.len());
        let kids = boxes(&a[8..]);
        let names: Vec<&str> = kids.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["mvhd", "trak", "trak"]);
        let big = moov(&movie(5 << 30), false);
        assert_eq!(big.len(), a.len() + 8, "co64 adds 4 bytes per chunk in each track");
        assert!(big.windows(4).any(|w| w == b"co64"));
        assert!(!a.windows(4).any(|w| w == b"co64"));
        assert_eq!(moov(&movie(1000), true).len(), big.len());
    }

    #[test]
    fn stts_is_run_length_coded() {
        let mut w = W(Vec::new());
        stts(&mut w, &[5, 5, 5, 7, 5]);
        // header 12 + count 4 + 3 runs * 8
        assert_eq!(w.0.len(), 16 + 24);
        assert_eq!(&w.0[12..16], &3u32.to_be_bytes());
    }

    #[test]
    fn descriptor_length_is_four_bytes() {
        let mut w = W(Vec::new());
        descriptor(&mut w, 3, 200);
        assert_eq!(w.0, [3, 0x80, 0x80, 0x81, 0x48]);
    }
}
