//! H.264 bitstream pieces blackbox needs, none of which allocate: splitting an Annex-B access
//! unit into NAL units, telling IDRs and B slices from the NAL and slice headers, reading the
//! few SPS fields a container needs (profile, level, size), building the `avcC` record, and
//! turning an Annex-B access unit into the length-prefixed form MP4 stores (docs/FORMAT.md,
//! codec 2).
//!
//! Every function takes arbitrary bytes: a truncated or corrupt NAL gives `None` or an error,
//! never a panic.

use std::fmt;

mod au;
pub use au::next_access_unit;

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

/// Largest SPS or PPS kept (real ones are tens of bytes).
pub const MAX_PARAM_SET: usize = 256;
/// Largest `avcC` record [`ParamSets::avcc`] writes.
pub const MAX_AVCC: usize = 7 + 2 + MAX_PARAM_SET + 1 + 2 + MAX_PARAM_SET + 4;

/// The NAL units of an Annex-B byte stream (start codes `00 00 01` or `00 00 00 01`), without
/// their start codes and without trailing zero bytes. Bytes before the first start code are
/// skipped.
pub struct AnnexB<'a> {
    rest: &'a [u8],
}

/// Splits an Annex-B access unit (or stream) into NAL units.
pub fn nal_units(data: &[u8]) -> AnnexB<'_> {
    let rest = match find_start(data) {
        Some((_, end)) => &data[end..],
        None => &[],
    };
    AnnexB { rest }
}

/// Position of the next start code in `d`: (start of the `00 00 01`, index after it).
pub(crate) fn find_start(d: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 3 <= d.len() {
        // memchr for the 01, then look back for two zeros.
        let p = memchr::memchr(1, &d[i + 2..])?;
        let one = i + 2 + p;
        if d[one - 1] == 0 && d[one - 2] == 0 {
            return Some((one - 2, one + 1));
        }
        i = one - 1;
    }
    None
}

impl<'a> Iterator for AnnexB<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start(self.rest) {
                Some((s, e)) => (&self.rest[..s], &self.rest[e..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let mut end = nal.len();
            while end > 0 && nal[end - 1] == 0 {
                end -= 1;
            }
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
    }
}

/// The NAL unit type (low five bits of the first byte); 0 for an empty unit.
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units of a length-prefixed (AVCC, 4-byte lengths) sample. Stops at the first
/// length that overruns the sample.
pub fn avcc_units(sample: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = sample;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let nal = rest.get(4..4 + n)?;
        rest = &rest[4 + n..];
        Some(nal)
    })
}

/// Reads bits of an RBSP straight from a NAL unit, skipping emulation-prevention bytes
/// (`00 00 03`) as it goes.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    bit: u8,
    zeros: u8,
    cur: u8,
}

impl<'a> BitReader<'a> {
    /// A reader over `rbsp_with_epb` (a NAL unit without its header byte).
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0, bit: 8, zeros: 0, cur: 0 }
    }

    fn next_byte(&mut self) -> Option<u8> {
        loop {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                self.zeros = 0;
                continue;
            }
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
            return Some(b);
        }
    }

    pub fn bit(&mut self) -> Option<u32> {
        if self.bit == 8 {
            self.cur = self.next_byte()?;
            self.bit = 0;
        }
        let v = (self.cur >> (7 - self.bit)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }

    pub fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n.min(32) {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Unsigned Exp-Golomb (`ue(v)`); `None` past the end or beyond 32 bits.
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// Signed Exp-Golomb (`se(v)`).
    pub fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let m = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { m } else { -m })
    }
}

/// `slice_type` of a coded slice NAL unit (types 1 and 5), modulo 5: 0 P, 1 B, 2 I, 3 SP, 4 SI.
pub fn slice_type(nal: &[u8]) -> Option<u32> {
    if !matches!(nal_type(nal), NAL_SLICE | NAL_IDR) {
        return None;
    }
    let mut r = BitReader::new(nal.get(1..)?);
    let _first_mb = r.ue()?;
    Some(r.ue()? % 5)
}

/// What a [`Sps`] says that a container or a player needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    /// Picture size after cropping.
    pub width: u32,
    pub height: u32,
    pub frame_mbs_only: bool,
    pub pic_order_cnt_type: u32,
    /// From the VUI's bitstream restriction, when present: 0 means no B-frames reorder.
    pub max_num_reorder_frames: Option<u32>,
}

impl Sps {
    /// The RFC 6381 codec string, e.g. `avc1.42C01F`.
    pub fn rfc6381(&self) -> heapless::String<16> {
        let mut s = heapless::String::new();
        let _ = fmt::Write::write_fmt(&mut s, format_args!("avc1.{:02X}{:02X}{:02X}", self.profile_idc, self.constraint_flags, self.level_idc));
        s
    }
}

fn skip_scaling_list(r: &mut BitReader, size: u32) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

/// Parses a sequence parameter set NAL unit (with its header byte). `None` when it is not an
/// SPS or is truncated or out of range.
pub fn parse_sps(nal: &[u8]) -> Option<Sps> {
    if nal_type(nal) != NAL_SPS || nal.len() < 4 {
        return None;
    }
    let (profile_idc, constraint_flags, level_idc) = (nal[1], nal[2], nal[3]);
    let mut r = BitReader::new(&nal[1..]);
    r.bits(24)?;
    let _sps_id = r.ue()?;
    let (mut chroma_format_idc, mut bdl, mut bdc) = (1u32, 8u32, 8u32);
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            r.bit()?;
        }
        bdl = r.ue()? + 8;
        bdc = r.ue()? + 8;
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    let poc_type = r.ue()?;
    match poc_type {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    let _max_refs = r.ue()?;
    r.bit()?; // gaps_in_frame_num_allowed
    let w_mbs = r.ue()?.checked_add(1)?;
    let h_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()? == 1;
    if !frame_mbs_only {
        r.bit()?;
    }
    r.bit()?; // direct_8x8_inference
    let (mut cl, mut cr, mut ct, mut cb) = (0u32, 0u32, 0u32, 0u32);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let h_mbs = h_units.checked_mul(if frame_mbs_only { 1 } else { 2 })?;
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = sub_w * cl.checked_add(cr)?;
    let crop_y = sub_h * (if frame_mbs_only { 1 } else { 2 }) * ct.checked_add(cb)?;
    let width = w_mbs.checked_mul(16)?.checked_sub(crop_x)?;
    let height = h_mbs.checked_mul(16)?.checked_sub(crop_y)?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return None;
    }
    let mut max_num_reorder_frames = None;
    if r.bit() == Some(1) {
        max_num_reorder_frames = parse_vui_reorder(&mut r);
    }
    Some(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc,
        bit_depth_luma: bdl,
        bit_depth_chroma: bdc,
        width,
        height,
        frame_mbs_only,
        pic_order_cnt_type: poc_type,
        max_num_reorder_frames,
    })
}

fn skip_hrd(r: &mut BitReader) -> Option<()> {
    let cpb = r.ue()?.checked_add(1)?;
    if cpb > 32 {
        return None;
    }
    r.bits(8)?;
    for _ in 0..cpb {
        r.ue()?;
        r.ue()?;
        r.bit()?;
    }
    r.bits(20)?;
    Some(())
}

/// The VUI up to `max_num_reorder_frames`, when the bitstream restriction is present.
fn parse_vui_reorder(r: &mut BitReader) -> Option<u32> {
    if r.bit()? == 1 && r.bits(8)? == 255 {
        r.bits(32)?; // sar
    }
    if r.bit()? == 1 {
        r.bit()?; // overscan_appropriate
    }
    if r.bit()? == 1 {
        r.bits(4)?;
        if r.bit()? == 1 {
            r.bits(24)?;
        }
    }
    if r.bit()? == 1 {
        r.ue()?;
        r.ue()?;
    }
    if r.bit()? == 1 {
        r.bits(32)?;
        r.bits(32)?;
        r.bit()?;
    }
    let nal_hrd = r.bit()? == 1;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()? == 1;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.bit()?;
    }
    r.bit()?; // pic_struct_present
    if r.bit()? == 1 {
        r.bit()?;
        r.ue()?;
        r.ue()?;
        r.ue()?;
        r.ue()?;
        let reorder = r.ue()?;
        r.ue()?;
        return Some(reorder);
    }
    None
}

/// Why an access unit can't be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuError {
    /// No NAL unit (not Annex-B, or empty).
    Empty,
    /// No coded slice in it.
    NoPicture,
    /// It holds a B slice: blackbox stores streams without B-frames only.
    BFrames,
    /// A parameter set longer than [`MAX_PARAM_SET`], or an SPS that doesn't parse.
    BadParamSet,
    /// The converted sample would not fit the output buffer's capacity.
    TooLarge,
}

impl fmt::Display for AuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuError::Empty => "not an H.264 access unit (no Annex-B start code)",
            AuError::NoPicture => "H.264 access unit without a coded picture",
            AuError::BFrames => {
                "the H.264 stream has B-frames, which blackbox does not store: set the camera or encoder to Baseline/Main without B-frames"
            }
            AuError::BadParamSet => "H.264 parameter set too long or unreadable",
            AuError::TooLarge => "H.264 access unit larger than the frame buffer",
        })
    }
}

impl std::error::Error for AuError {}

/// The newest SPS and PPS of a stream (one of each: what blackbox's sources send), kept in
/// fixed buffers.
#[derive(Clone, Copy)]
pub struct ParamSets {
    sps: [u8; MAX_PARAM_SET],
    sps_len: usize,
    pps: [u8; MAX_PARAM_SET],
    pps_len: usize,
    /// Bumped whenever either changes.
    pub generation: u64,
}

impl Default for ParamSets {
    fn default() -> Self {
        ParamSets { sps: [0; MAX_PARAM_SET], sps_len: 0, pps: [0; MAX_PARAM_SET], pps_len: 0, generation: 0 }
    }
}

impl fmt::Debug for ParamSets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParamSets").field("sps_len", &self.sps_len).field("pps_len", &self.pps_len).finish()
    }
}

impl ParamSets {
    pub fn sps(&self) -> &[u8] {
        &self.sps[..self.sps_len]
    }
    pub fn pps(&self) -> &[u8] {
        &self.pps[..self.pps_len]
    }
    pub fn complete(&self) -> bool {
        self.sps_len > 0 && self.pps_len > 0
    }

    fn set(buf: &mut [u8; MAX_PARAM_SET], len: &mut usize, nal: &[u8]) -> Result<bool, AuError> {
        if nal.len() > MAX_PARAM_SET {
            return Err(AuError::BadParamSet);
        }
        if &buf[..*len] == nal {
            return Ok(false);
        }
        buf[..nal.len()].copy_from_slice(nal);
        *len = nal.len();
        Ok(true)
    }

    /// Takes in an SPS or PPS NAL unit; true if it changed what is kept.
    pub fn update(&mut self, nal: &[u8]) -> Result<bool, AuError> {
        let changed = match nal_type(nal) {
            NAL_SPS => {
                if parse_sps(nal).is_none() {
                    return Err(AuError::BadParamSet);
                }
                Self::set(&mut self.sps, &mut self.sps_len, nal)?
            }
            NAL_PPS => Self::set(&mut self.pps, &mut self.pps_len, nal)?,
            _ => false,
        };
        if changed {
            self.generation += 1;
        }
        Ok(changed)
    }

    /// The parsed SPS.
    pub fn parsed(&self) -> Option<Sps> {
        parse_sps(self.sps())
    }

    /// Writes the `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1) into `out` and
    /// returns its length; 0 unless both parameter sets are known.
    pub fn avcc(&self, out: &mut [u8; MAX_AVCC]) -> usize {
        let Some(sps) = self.parsed() else { return 0 };
        if self.pps_len == 0 {
            return 0;
        }
        let s = self.sps();
        let p = self.pps();
        let mut n = 0;
        let mut put = |b: &[u8]| {
            out[n..n + b.len()].copy_from_slice(b);
            n += b.len();
        };
        put(&[1, s[1], s[2], s[3], 0xff, 0xe1]);
        put(&(s.len() as u16).to_be_bytes());
        put(s);
        put(&[1]);
        put(&(p.len() as u16).to_be_bytes());
        put(p);
        if matches!(sps.profile_idc, 100 | 110 | 122 | 144) {
            put(&[
                0xfc | (sps.chroma_format_idc as u8 & 3),
                0xf8 | ((sps.bit_depth_luma - 8) as u8 & 7),
                0xf8 | ((sps.bit_depth_chroma - 8) as u8 & 7),
                0,
            ]);
        }
        n
    }
}

/// Reads the SPS and PPS back out of an `avcC` record.
pub fn params_from_avcc(avcc: &[u8]) -> Option<ParamSets> {
    let mut ps = ParamSets::default();
    if avcc.len() < 7 || avcc[0] != 1 {
        return None;
    }
    let nsps = avcc[5] & 0x1f;
    let mut at = 6;
    for _ in 0..nsps {
        let len = u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]) as usize;
        ps.update(avcc.get(at + 2..at + 2 + len)?).ok()?;
        at += 2 + len;
    }
    let npps = *avcc.get(at)?;
    at += 1;
    for _ in 0..npps {
        let len = u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]) as usize;
        ps.update(avcc.get(at + 2..at + 2 + len)?).ok()?;
        at += 2 + len;
    }
    ps.complete().then_some(ps)
}

/// What [`to_avcc`] found in an access unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuInfo {
    /// It holds an IDR slice.
    pub idr: bool,
    /// It carried an SPS or PPS that differs from the ones kept before.
    pub params_changed: bool,
}

/// Scans an Annex-B access unit: is it an IDR, does it hold a picture, a B slice, new
/// parameter sets (taken into `ps`). Nothing is copied.
pub fn inspect(au: &[u8], ps: &mut ParamSets) -> Result<AuInfo, AuError> {
    let mut info = AuInfo::default();
    let (mut any, mut picture) = (false, false);
    for nal in nal_units(au) {
        any = true;
        match nal_type(nal) {
            NAL_SPS | NAL_PPS => info.params_changed |= ps.update(nal)?,
            t @ (NAL_SLICE | NAL_IDR) => {
                picture = true;
                info.idr |= t == NAL_IDR;
                if slice_type(nal) == Some(1) {
                    return Err(AuError::BFrames);
                }
            }
            _ => {}
        }
    }
    if !any {
        return Err(AuError::Empty);
    }
    if !picture {
        return Err(AuError::NoPicture);
    }
    if let Some(sps) = ps.parsed()
        && sps.max_num_reorder_frames.is_some_and(|n| n > 0)
        && sps.pic_order_cnt_type != 2
    {
        return Err(AuError::BFrames);
    }
    Ok(info)
}

/// Converts an Annex-B access unit into an AVCC sample (4-byte big-endian NAL lengths) in
/// `out`, leaving out SPS, PPS and access-unit delimiters (they live in the `avcC`), and
/// takes new parameter sets into `ps`. `out` is cleared first and never grows beyond its
/// capacity (no allocation): a sample that would not fit is [`AuError::TooLarge`].
pub fn to_avcc(au: &[u8], ps: &mut ParamSets, out: &mut Vec<u8>) -> Result<AuInfo, AuError> {
    let info = inspect(au, ps)?;
    out.clear();
    for nal in nal_units(au) {
        if matches!(nal_type(nal), NAL_SPS | NAL_PPS | NAL_AUD) {
            continue;
        }
        if out.len() + 4 + nal.len() > out.capacity() {
            out.clear();
            return Err(AuError::TooLarge);
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(info)
}

/// Writes an AVCC sample back as Annex-B (4-byte start codes) into `out` (cleared first),
/// prefixed with the parameter sets when `with_params` (for a decoder starting at an IDR).
pub fn avcc_to_annexb(sample: &[u8], ps: Option<&ParamSets>, out: &mut Vec<u8>) {
    out.clear();
    if let Some(ps) = ps {
        for nal in [ps.sps(), ps.pps()] {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    for nal in avcc_units(sample) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
}

#[cfg(test)]
mod tests;
