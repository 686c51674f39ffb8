//! Fragmented MP4 (ISO/IEC 14496-12) for `/api/live.mp4`: an init segment (`ftyp` + `moov`
//! with `avc1`/`avcC`, with the microphone's `mp4a` track when sound is recorded, and `mvex`)
//! and one fragment per access unit (`prft` + `moof` + `mdat`), video or sound.
//!
//! Boxes are written into caller-owned fixed buffers ([`Boxes`]), so a stream allocates nothing
//! per frame. Each fragment carries a `prft` box (producer reference time) with the picture's
//! capture time (UTC, NTP format): Media Source Extensions ignore it, a client measuring latency
//! reads it.

use crate::codec::h264::{ParamSets, MAX_AVCC};

/// Media timescale of the video track (ticks per second; the usual one for video).
pub const TIMESCALE: u32 = 90_000;
/// The video track.
pub const TRACK: u32 = 1;
/// The sound track (when there is one).
pub const AUDIO_TRACK: u32 = 2;
/// Bytes an init segment needs at most (boxes plus the largest `avcC`, and the sound track).
pub const INIT_MAX: usize = 800 + MAX_AVCC + 400;
/// Bytes of a fragment's boxes before the sample (`prft` + `moof` + `mdat` header).
pub const FRAGMENT_HEAD: usize = 32 + 8 + 16 + 8 + 16 + 20 + 32 + 8;

/// A box writer over a fixed buffer; writing past its end marks it overflowed instead.
pub struct Boxes<'a> {
    buf: &'a mut [u8],
    n: usize,
    overflow: bool,
}

impl<'a> Boxes<'a> {
    pub fn new(buf: &'a mut [u8]) -> Boxes<'a> {
        Boxes { buf, n: 0, overflow: false }
    }

    /// What was written, or `None` if it did not fit.
    pub fn done(self) -> Option<&'a [u8]> {
        let Boxes { buf, n, overflow } = self;
        (!overflow).then_some(&buf[..n])
    }

    fn put(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.n..self.n + b.len()) {
            Some(d) => {
                d.copy_from_slice(b);
                self.n += b.len();
            }
            None => self.overflow = true,
        }
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }
    fn zeros(&mut self, k: usize) {
        for _ in 0..k {
            self.u8(0);
        }
    }

    /// Opens a box; returns where its size goes ([`Boxes::close`]).
    fn open(&mut self, fourcc: &[u8; 4]) -> usize {
        let at = self.n;
        self.u32(0);
        self.put(fourcc);
        at
    }
    /// Opens a full box (version and flags).
    fn full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let at = self.open(fourcc);
        self.u32(u32::from(version) << 24 | (flags & 0xff_ffff));
        at
    }
    fn close(&mut self, at: usize) {
        if self.overflow {
            return;
        }
        let size = (self.n - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// Writes the init segment for a stream with parameter sets `ps` (and, with `audio`, a sound
/// track of that rate and AudioSpecificConfig) into `b`; false when the parameter sets are
/// incomplete or unreadable.
pub fn init_segment(ps: &ParamSets, audio: Option<(u32, &[u8])>, b: &mut Boxes<'_>) -> bool {
    let Some(sps) = ps.parsed() else { return false };
    let mut avcc = [0u8; MAX_AVCC];
    let alen = ps.avcc(&mut avcc);
    if alen == 0 {
        return false;
    }
    let (w, h) = (sps.width, sps.height);
    let ftyp = b.open(b"ftyp");
    b.put(b"isom");
    b.u32(0x200);
    b.put(b"isomiso5iso6avc1mp41");
    b.close(ftyp);

    let moov = b.open(b"moov");
    let mvhd = b.full(b"mvhd", 0, 0);
    b.u32(0);
    b.u32(0);
    b.u32(1000);
    b.u32(0);
    b.u32(0x0001_0000);
    b.u16(0x0100);
    b.zeros(10);
    b.matrix();
    b.zeros(24);
    b.u32(if audio.is_some() { AUDIO_TRACK + 1 } else { TRACK + 1 });
    b.close(mvhd);

    let trak = b.open(b"trak");
    let tkhd = b.full(b"tkhd", 0, 3);
    b.u32(0);
    b.u32(0);
    b.u32(TRACK);
    b.u32(0);
    b.u32(0);
    b.zeros(8);
    b.u16(0);
    b.u16(0);
    b.u16(0);
    b.u16(0);
    b.matrix();
    b.u32(w << 16);
    b.u32(h << 16);
    b.close(tkhd);

    let mdia = b.open(b"mdia");
    let mdhd = b.full(b"mdhd", 0, 0);
    b.u32(0);
    b.u32(0);
    b.u32(TIMESCALE);
    b.u32(0);
    b.u16(0x55c4); // "und"
    b.u16(0);
    b.close(mdhd);
    let hdlr = b.full(b"hdlr", 0, 0);
    b.u32(0);
    b.put(b"vide");
    b.zeros(12);
    b.put(b"blackbox live\0");
    b.close(hdlr);

    let minf = b.open(b"minf");
    let vmhd = b.full(b"vmhd", 0, 1);
    b.zeros(8);
    b.close(vmhd);
    dinf(b);

    let stbl = b.open(b"stbl");
    let stsd = b.full(b"stsd", 0, 0);
    b.u32(1);
    let avc1 = b.open(b"avc1");
    b.zeros(6);
    b.u16(1); // data reference index
    b.zeros(16);
    b.u16(w as u16);
    b.u16(h as u16);
    b.u32(0x0048_0000);
    b.u32(0x0048_0000);
    b.u32(0);
    b.u16(1); // frame count
    b.zeros(32); // compressor name
    b.u16(0x0018);
    b.u16(0xffff);
    let avcc_box = b.open(b"avcC");
    b.put(&avcc[..alen]);
    b.close(avcc_box);
    b.close(avc1);
    b.close(stsd);
    empty_tables(b);
    b.close(stbl);
    b.close(minf);
    b.close(mdia);
    b.close(trak);

    if let Some((rate, asc)) = audio {
        audio_trak(b, rate, asc);
    }

    let mvex = b.open(b"mvex");
    for t in if audio.is_some() { &[TRACK, AUDIO_TRACK][..] } else { &[TRACK][..] } {
        let trex = b.full(b"trex", 0, 0);
        b.u32(*t);
        b.u32(1);
        b.u32(0);
        b.u32(0);
        b.u32(0);
        b.close(trex);
    }
    b.close(mvex);
    b.close(moov);
    true
}

/// `dinf` with one self-contained data reference.
fn dinf(b: &mut Boxes<'_>) {
    let dinf = b.open(b"dinf");
    let dref = b.full(b"dref", 0, 0);
    b.u32(1);
    let url = b.full(b"url ", 0, 1);
    b.close(url);
    b.close(dref);
    b.close(dinf);
}

/// The empty sample tables of a fragmented track (the samples come in fragments).
fn empty_tables(b: &mut Boxes<'_>) {
    for t in [b"stts", b"stsc", b"stco"] {
        let x = b.full(t, 0, 0);
        b.u32(0);
        b.close(x);
    }
    let stsz = b.full(b"stsz", 0, 0);
    b.u32(0);
    b.u32(0);
    b.close(stsz);
}

/// The sound track of the init segment: AAC-LC mono, `mp4a` with its `esds`, the media
/// timescale the sample rate.
fn audio_trak(b: &mut Boxes<'_>, rate: u32, asc: &[u8]) {
    let trak = b.open(b"trak");
    let tkhd = b.full(b"tkhd", 0, 3);
    b.zeros(8);
    b.u32(AUDIO_TRACK);
    b.zeros(4 + 4 + 8);
    b.u16(0); // layer
    b.u16(1); // alternate group
    b.u16(0x0100); // volume
    b.u16(0);
    b.matrix();
    b.zeros(8);
    b.close(tkhd);
    let mdia = b.open(b"mdia");
    let mdhd = b.full(b"mdhd", 0, 0);
    b.zeros(8);
    b.u32(rate);
    b.u32(0);
    b.u16(0x55c4);
    b.u16(0);
    b.close(mdhd);
    let hdlr = b.full(b"hdlr", 0, 0);
    b.u32(0);
    b.put(b"soun");
    b.zeros(12);
    b.put(b"blackbox sound\0");
    b.close(hdlr);
    let minf = b.open(b"minf");
    let smhd = b.full(b"smhd", 0, 0);
    b.zeros(4);
    b.close(smhd);
    dinf(b);
    let stbl = b.open(b"stbl");
    let stsd = b.full(b"stsd", 0, 0);
    b.u32(1);
    let mp4a = b.open(b"mp4a");
    b.zeros(6);
    b.u16(1);
    b.zeros(8);
    b.u16(1); // channels
    b.u16(16);
    b.zeros(4);
    b.u32(rate.min(65_535) << 16);
    let esds = b.full(b"esds", 0, 0);
    let n = asc.len() as u8;
    // ES_Descriptor { ES_ID, flags, DecoderConfigDescriptor { AAC, audio, DecSpecificInfo }, SL }
    b.put(&[3, 3 + 2 + 13 + 2 + n + 2 + 1]);
    b.u16(AUDIO_TRACK as u16);
    b.u8(0);
    b.put(&[4, 13 + 2 + n, 0x40, 0x15, 0, 0x03, 0]);
    b.u32(0);
    b.u32(0);
    b.put(&[5, n]);
    b.put(asc);
    b.put(&[6, 1, 2]);
    b.close(esds);
    b.close(mp4a);
    b.close(stsd);
    empty_tables(b);
    b.close(stbl);
    b.close(minf);
    b.close(mdia);
    b.close(trak);
}

/// One fragment's place in the stream.
#[derive(Clone, Copy, Debug)]
pub struct Fragment {
    /// [`TRACK`] or [`AUDIO_TRACK`].
    pub track: u32,
    /// `mfhd` sequence number (1, 2, ...).
    pub sequence: u32,
    /// Decode time of the sample, in the track's timescale ([`TIMESCALE`] for video, the
    /// sample rate for sound).
    pub decode_time: u64,
    /// Sample duration in ticks.
    pub duration: u32,
    /// Sample size in bytes (the AVCC sample that follows the `mdat` header).
    pub size: u32,
    pub key: bool,
    /// Capture time, UTC ns (for `prft`).
    pub utc_ns: i64,
}

/// Seconds from 1900 (NTP's epoch) to 1970.
const NTP_UNIX: u64 = 2_208_988_800;

/// The 64-bit NTP timestamp of a UTC time in ns since the Unix epoch (0 before 1970).
pub fn ntp(utc_ns: i64) -> u64 {
    let ns = u64::try_from(utc_ns).unwrap_or(0);
    let (s, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    ((s + NTP_UNIX) << 32) | ((frac << 32) / 1_000_000_000)
}

/// Writes a fragment's `prft`, `moof` and `mdat` header; the sample's bytes follow it.
pub fn fragment_head(f: &Fragment, b: &mut Boxes<'_>) {
    let prft = b.full(b"prft", 1, 0);
    b.u32(f.track);
    b.u64(ntp(f.utc_ns));
    b.u64(f.decode_time);
    b.close(prft);

    let moof_at = b.n;
    let moof = b.open(b"moof");
    let mfhd = b.full(b"mfhd", 0, 0);
    b.u32(f.sequence);
    b.close(mfhd);
    let traf = b.open(b"traf");
    // default-base-is-moof: data offsets count from the start of the moof.
    let tfhd = b.full(b"tfhd", 0, 0x02_0000);
    b.u32(f.track);
    b.close(tfhd);
    let tfdt = b.full(b"tfdt", 1, 0);
    b.u64(f.decode_time);
    b.close(tfdt);
    // data-offset, sample-duration, sample-size, sample-flags present.
    let trun = b.full(b"trun", 0, 0x0701);
    b.u32(1);
    let data_offset_at = b.n;
    b.u32(0);
    b.u32(f.duration);
    b.u32(f.size);
    // A key frame depends on nothing; any other picture depends on others and is no sync sample.
    b.u32(if f.key { 0x0200_0000 } else { 0x0101_0000 });
    b.close(trun);
    b.close(traf);
    b.close(moof);
    if !b.overflow {
        let off = (b.n - moof_at + 8) as u32;
        b.buf[data_offset_at..data_offset_at + 4].copy_from_slice(&off.to_be_bytes());
    }
    b.u32(8 + f.size);
    b.put(b"mdat");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (type, payload) of the top-level boxes in `b`.
    fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while b.len() >= 8 {
            let size = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
            let t: [u8; 4] = b[4..8].try_into().unwrap();
            let end = size.min(b.len());
            out.push((t, &b[8..end]));
            b = &b[end..];
        }
        out
    }

    #[test]
    fn a_fragment_is_prft_moof_mdat_with_the_right_offsets() {
        let mut buf = [0u8; FRAGMENT_HEAD];
        let mut b = Boxes::new(&mut buf);
        let f = Fragment { track: TRACK, sequence: 7, decode_time: 123_456, duration: 3000, size: 1000, key: false, utc_ns: 1_700_000_000_500_000_000 };
        fragment_head(&f, &mut b);
        let head = b.done().expect("fits");
        assert_eq!(head.len(), FRAGMENT_HEAD);
        let mut whole = head.to_vec();
        whole.extend(std::iter::repeat_n(0xaa, 1000));
        let top = boxes(&whole);
        let names: Vec<&[u8; 4]> = top.iter().map(|(t, _)| t).collect();
        assert_eq!(names, [b"prft", b"moof", b"mdat"]);
        assert_eq!(top[2].1.len(), 1000);
        // trun's data offset points at the mdat payload, counted from the moof's start.
        let moof_start = 8 + top[0].1.len();
        let trun = whole.windows(4).position(|w| w == b"trun").unwrap();
        let off = u32::from_be_bytes(whole[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(&whole[moof_start + off..moof_start + off + 4], &[0xaa; 4]);
        let mfhd = whole.windows(4).position(|w| w == b"mfhd").unwrap();
        assert_eq!(u32::from_be_bytes(whole[mfhd + 8..mfhd + 12].try_into().unwrap()), 7);
        // prft: NTP seconds since 1900 and half a second.
        assert_eq!(ntp(1_700_000_000_500_000_000), ((1_700_000_000 + NTP_UNIX) << 32) | (1 << 31));
    }

    #[test]
    fn too_small_a_buffer_is_refused_not_overrun() {
        let mut buf = [0u8; 40];
        let mut b = Boxes::new(&mut buf);
        let f = Fragment { track: TRACK, sequence: 1, decode_time: 0, duration: 3000, size: 10, key: true, utc_ns: 0 };
        fragment_head(&f, &mut b);
        assert!(b.done().is_none());
    }
}
