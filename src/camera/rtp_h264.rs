//! H.264 over RTP (RFC 6184) back into Annex-B access units, without allocating per packet.
//!
//! Packets carry single NAL units (types 1-23), STAP-A aggregates (24) or FU-A fragments (28);
//! the other packetizations (STAP-B, MTAP, FU-B: interleaved mode, which the SDP would have to
//! ask for) are refused as damage. An access unit is every NAL unit with one RTP timestamp; it
//! ends at the marker bit or when the next timestamp starts.
//!
//! Losses: a jump in the sequence numbers damages the access unit being built. A damaged unit
//! is never handed out, nor is anything after it until the next IDR picture (a P-picture
//! whose reference is missing would decode to garbage); each one left out is counted. Pictures
//! that vanished whole inside a gap are counted from the RTP timestamps, at the stream's
//! frame interval (the smallest step seen between two access units).

/// The largest access unit kept (bytes); a larger one is left out and counted.
pub const MAX_AU: usize = 4 << 20;
/// The largest SPS or PPS kept.
const MAX_PARAM: usize = 256;
const START: [u8; 4] = [0, 0, 0, 1];

/// An RTP packet's header fields the depacketizer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Splits an RTP packet into header and payload (CSRCs, extension and padding removed).
pub fn parse_rtp(p: &[u8]) -> Option<(RtpHeader, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(p[0] & 0x0f);
    let mut at = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let len = usize::from(u16::from_be_bytes([*p.get(at + 2)?, *p.get(at + 3)?]));
        at += 4 + 4 * len;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*p.last()?))?;
    }
    let payload = p.get(at..end)?;
    let h = RtpHeader {
        marker: p[1] & 0x80 != 0,
        payload_type: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    };
    Some((h, payload))
}

/// An access unit ready in [`Depacketizer::frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub timestamp: u32,
    pub idr: bool,
    /// Pictures left out or missing right before this one.
    pub lost_before: u32,
}

pub struct Depacketizer {
    /// The unit being built (Annex-B).
    au: Vec<u8>,
    /// The last unit handed out (Annex-B, parameter sets in front of an IDR).
    done: Vec<u8>,
    ts: Option<u32>,
    last_seq: Option<u16>,
    /// The unit being built lost a packet (or holds something we can't use).
    damaged: bool,
    /// A FU-A fragment run is open.
    in_fu: bool,
    idr: bool,
    has_sps: bool,
    has_pps: bool,
    sps: heapless::Vec<u8, MAX_PARAM>,
    pps: heapless::Vec<u8, MAX_PARAM>,
    /// Nothing is handed out until an IDR (after a loss, and at the start).
    need_idr: bool,
    /// Packets went missing since the last finished unit.
    gap: bool,
    /// The timestamp of the last finished unit (handed out or not).
    prev_ts: Option<u32>,
    /// The smallest timestamp step between two units seen so far.
    step: Option<u32>,
    /// Pictures counted as lost, waiting to be reported with the next one handed out.
    pending_lost: u32,
    /// Every picture left out or missing so far.
    pub lost: u64,
}

impl Default for Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Depacketizer {
    pub fn new() -> Depacketizer {
        Depacketizer {
            au: Vec::with_capacity(MAX_AU),
            done: Vec::with_capacity(MAX_AU + 2 * (MAX_PARAM + 4)),
            ts: None,
            last_seq: None,
            damaged: false,
            in_fu: false,
            idr: false,
            has_sps: false,
            has_pps: false,
            sps: heapless::Vec::new(),
            pps: heapless::Vec::new(),
            need_idr: true,
            gap: false,
            prev_ts: None,
            step: None,
            pending_lost: 0,
            lost: 0,
        }
    }

    /// Parameter sets known before any packet (the SDP's `sprop-parameter-sets`).
    pub fn set_param(&mut self, nal: &[u8]) {
        match nal.first().map(|b| b & 0x1f) {
            Some(7) => self.sps = heapless::Vec::from_slice(nal).unwrap_or_default(),
            Some(8) => self.pps = heapless::Vec::from_slice(nal).unwrap_or_default(),
            _ => {}
        }
    }

    pub fn sps(&self) -> &[u8] {
        &self.sps
    }

    /// The frame interval in RTP ticks, once two consecutive units were seen.
    pub fn step(&self) -> Option<u32> {
        self.step
    }

    /// The access unit the last `Ready` describes.
    pub fn frame(&self) -> &[u8] {
        &self.done
    }

    /// Takes one RTP packet's header and payload. `Some` when an access unit was finished and
    /// handed out into [`Depacketizer::frame`] (by this packet's marker bit or by its new
    /// timestamp; in the second case this packet starts the next unit).
    pub fn push(&mut self, h: &RtpHeader, payload: &[u8]) -> Option<Ready> {
        let mut gap = false;
        if let Some(last) = self.last_seq {
            let d = h.seq.wrapping_sub(last);
            if d == 0 || d > 0x8000 {
                // A duplicate or a late packet: TCP doesn't reorder; ignore it.
                return None;
            }
            gap = d != 1;
        }
        self.last_seq = Some(h.seq);
        let mut out = None;
        if self.ts.is_some_and(|t| t != h.timestamp) && (!self.au.is_empty() || self.damaged) {
            // The unit before ends here. It had no marker, so the lost packets may have been
            // its last ones: it is damaged too.
            self.damaged |= gap;
            out = self.finish();
        }
        if gap {
            self.damaged = true;
            self.gap = true;
        }
        self.ts = Some(h.timestamp);
        self.take(payload);
        if h.marker {
            // Two units in one push only if the previous one never got its marker; the older
            // one wins and this one is counted lost (rare: a sender that omits markers sends
            // none, and then units end by timestamp alone).
            match out {
                None => out = self.finish(),
                Some(_) => {
                    self.discard();
                }
            }
        }
        out
    }

    fn start_nal(&mut self, header: u8) {
        match header & 0x1f {
            5 => self.idr = true,
            7 => self.has_sps = true,
            8 => self.has_pps = true,
            _ => {}
        }
    }

    fn append_nal(&mut self, nal: &[u8]) {
        if nal.is_empty() {
            self.damaged = true;
            return;
        }
        if self.au.len() + 4 + nal.len() > MAX_AU {
            self.damaged = true;
            return;
        }
        self.start_nal(nal[0]);
        match nal[0] & 0x1f {
            7 => self.sps = heapless::Vec::from_slice(nal).unwrap_or_default(),
            8 => self.pps = heapless::Vec::from_slice(nal).unwrap_or_default(),
            _ => {}
        }
        self.au.extend_from_slice(&START);
        self.au.extend_from_slice(nal);
    }

    fn take(&mut self, p: &[u8]) {
        let Some(&first) = p.first() else {
            self.damaged = true;
            return;
        };
        match first & 0x1f {
            1..=23 => {
                if self.in_fu {
                    self.damaged = true;
                    self.in_fu = false;
                }
                self.append_nal(p);
            }
            24 => {
                let mut at = 1;
                while at + 2 <= p.len() {
                    let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                    at += 2;
                    match p.get(at..at + len) {
                        Some(nal) => self.append_nal(nal),
                        None => {
                            self.damaged = true;
                            return;
                        }
                    }
                    at += len;
                }
            }
            28 => {
                let Some(&fu) = p.get(1) else {
                    self.damaged = true;
                    return;
                };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                let body = &p[2..];
                if start {
                    if self.in_fu {
                        self.damaged = true;
                    }
                    let header = (first & 0xe0) | (fu & 0x1f);
                    if self.au.len() + 5 + body.len() > MAX_AU {
                        self.damaged = true;
                        return;
                    }
                    self.start_nal(header);
                    self.au.extend_from_slice(&START);
                    self.au.push(header);
                    self.au.extend_from_slice(body);
                    self.in_fu = !end;
                } else if !self.in_fu {
                    self.damaged = true;
                } else if self.au.len() + body.len() > MAX_AU {
                    self.damaged = true;
                    self.in_fu = false;
                } else {
                    self.au.extend_from_slice(body);
                    if end {
                        self.in_fu = false;
                    }
                }
            }
            _ => self.damaged = true,
        }
    }

    /// Counts what vanished between the last finished unit and this one (after a gap), from
    /// the timestamps.
    fn count_missing(&mut self, ts: u32) {
        if let Some(prev) = self.prev_ts {
            let d = ts.wrapping_sub(prev);
            if d > 0 && d < 0x8000_0000 {
                if self.gap
                    && let Some(step) = self.step
                {
                    // Rounded; at most 10 minutes' worth at 30 fps (a stalled sender that comes
                    // back on the same session is a gap, not a loss to count per picture).
                    let whole = ((u64::from(d) + u64::from(step) / 2) / u64::from(step)).saturating_sub(1).min(18_000);
                    self.pending_lost += whole as u32;
                    self.lost += whole;
                }
                if !self.gap || self.step.is_none() {
                    self.step = Some(self.step.map_or(d, |s| s.min(d)));
                }
            }
        }
        self.prev_ts = Some(ts);
        self.gap = false;
    }

    fn discard(&mut self) {
        self.pending_lost += 1;
        self.lost += 1;
        self.reset_unit();
    }

    fn reset_unit(&mut self) {
        self.au.clear();
        self.damaged = false;
        self.in_fu = false;
        self.idr = false;
        self.has_sps = false;
        self.has_pps = false;
    }

    fn finish(&mut self) -> Option<Ready> {
        let ts = self.ts?;
        self.count_missing(ts);
        if self.damaged || self.in_fu || self.au.is_empty() {
            // A unit that lost a packet: left out, and so is everything until the next IDR.
            self.need_idr = true;
            self.discard();
            return None;
        }
        if self.need_idr && !self.idr {
            self.discard();
            return None;
        }
        if self.idr && (!self.has_sps || !self.has_pps) && (self.sps.is_empty() || self.pps.is_empty()) {
            // An IDR nobody can decode (no parameter sets in-band or in the SDP yet).
            self.need_idr = true;
            self.discard();
            return None;
        }
        self.done.clear();
        if self.idr && !(self.has_sps && self.has_pps) {
            for p in [&self.sps[..], &self.pps[..]] {
                self.done.extend_from_slice(&START);
                self.done.extend_from_slice(p);
            }
        }
        self.done.extend_from_slice(&self.au);
        let r = Ready { timestamp: ts, idr: self.idr, lost_before: std::mem::take(&mut self.pending_lost) };
        if self.idr {
            self.need_idr = false;
        }
        self.reset_unit();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seq: u16, ts: u32, marker: bool) -> RtpHeader {
        RtpHeader { marker, payload_type: 96, seq, timestamp: ts, ssrc: 1 }
    }

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    #[test]
    fn rtp_headers_lose_csrcs_extensions_and_padding() {
        let mut p = vec![0xb1, 0xe0, 0, 7, 0, 0, 1, 0, 0, 0, 0, 9];
        p.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, one word
        p.extend_from_slice(&[0x65, 0xaa]);
        p.extend_from_slice(&[0, 0, 3]); // padding of 3
        let (hd, pl) = parse_rtp(&p).unwrap();
        assert_eq!((hd.marker, hd.payload_type, hd.seq, hd.timestamp, hd.ssrc), (true, 96, 7, 256, 9));
        assert_eq!(pl, &[0x65, 0xaa]);
        assert!(parse_rtp(&p[..11]).is_none());
        assert!(parse_rtp(&[0x40; 12]).is_none());
    }

    #[test]
    fn single_stap_and_fragments_make_annex_b_units() {
        let mut d = Depacketizer::new();
        // STAP-A with SPS and PPS, then an IDR in three FU-A fragments.
        let mut stap = vec![24];
        for n in [SPS, PPS] {
            stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            stap.extend_from_slice(n);
        }
        assert!(d.push(&h(1, 0, false), &stap).is_none());
        assert!(d.push(&h(2, 0, false), &[0x7c, 0x85, 1, 2]).is_none());
        assert!(d.push(&h(3, 0, false), &[0x7c, 0x05, 3]).is_none());
        let r = d.push(&h(4, 0, true), &[0x7c, 0x45, 4]).unwrap();
        assert!(r.idr && r.lost_before == 0);
        let mut want = vec![0, 0, 0, 1];
        want.extend_from_slice(SPS);
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(PPS);
        want.extend_from_slice(&[0, 0, 0, 1, 0x65, 1, 2, 3, 4]);
        assert_eq!(d.frame(), &want[..]);
        // A P picture as a single NAL unit.
        let r = d.push(&h(5, 3000, true), &[0x41, 9, 9]).unwrap();
        assert!(!r.idr);
        assert_eq!(d.frame(), &[0, 0, 0, 1, 0x41, 9, 9]);
        assert_eq!(d.step(), Some(3000));
    }

    #[test]
    fn a_loss_is_counted_and_nothing_is_served_until_the_next_idr() {
        let mut d = Depacketizer::new();
        d.set_param(SPS);
        d.set_param(PPS);
        // Nothing before the first IDR.
        assert!(d.push(&h(1, 0, true), &[0x41, 1]).is_none());
        // An IDR without in-band parameter sets gets the SDP's in front.
        assert!(d.push(&h(2, 3000, true), &[0x65, 1]).unwrap().idr);
        assert!(d.frame().starts_with(&[0, 0, 0, 1, 0x67]));
        assert!(d.push(&h(3, 6000, true), &[0x41, 2]).is_some());
        // Packet 4 (a whole picture at 9000) and the first fragment of 12000 are lost.
        assert!(d.push(&h(6, 12000, false), &[0x7c, 0x01, 5]).is_none());
        assert!(d.push(&h(7, 12000, true), &[0x7c, 0x41, 6]).is_none());
        // 15000 arrives whole but refers to what was lost.
        assert!(d.push(&h(8, 15000, true), &[0x41, 3]).is_none());
        let r = d.push(&h(9, 18000, true), &[0x65, 4]).unwrap();
        // Lost: the picture at 9000 (missing whole), 12000 (damaged), 15000 (no reference),
        // and the first P before any IDR.
        assert_eq!(r.lost_before, 3);
        assert_eq!(d.lost, 4);
        // Units without markers end by timestamp.
        assert!(d.push(&h(10, 21000, false), &[0x41, 5]).is_none());
        assert_eq!(d.push(&h(11, 24000, false), &[0x41, 6]).unwrap().timestamp, 21000);
        assert_eq!(d.frame(), &[0, 0, 0, 1, 0x41, 5]);
    }

    #[test]
    fn hostile_payloads_are_damage_not_panics() {
        let mut d = Depacketizer::new();
        for p in [&[][..], &[24, 0, 9, 1], &[28], &[28, 0x05, 1], &[29, 0], &[0x7c, 0x45]] {
            let _ = d.push(&h(d.last_seq.map_or(0, |s| s + 1), 0, true), p);
        }
        assert!(d.lost > 0);
    }
}
