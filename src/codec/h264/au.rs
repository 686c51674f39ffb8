//! Splitting an Annex-B byte stream (a `.h264` file) into access units, one picture each
//! (H.264 7.4.1.2.3): a new access unit starts at an access-unit delimiter, or at an SPS, PPS,
//! SEI or NAL types 14..=18 after a slice, or at a slice whose `first_mb_in_slice` is 0 after
//! a slice. Total: any input gives an answer, never a panic.

use super::{BitReader, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SLICE, NAL_SPS, find_start, nal_type};

/// Where the start code at `sc` really starts: one more zero byte before a `00 00 01` makes it
/// the four-byte form (`zero_byte` belongs to the NAL unit that follows).
fn widen(data: &[u8], sc: usize, floor: usize) -> usize {
    if sc > floor && data[sc - 1] == 0 { sc - 1 } else { sc }
}

/// Is this NAL unit (header byte on) a slice that starts a new picture?
fn first_mb_zero(nal: &[u8]) -> bool {
    let Some(body) = nal.get(1..) else { return false };
    BitReader::new(body).ue() == Some(0)
}

/// Finds the next complete access unit at or after `from` in `data`: `(start, end)`, `start`
/// at its first start code (four-byte form included), `end` where the next access unit's
/// start code begins (or `data.len()` when `at_eof`). Bytes before the first start code are
/// skipped. `None` when the data seen so far holds no complete access unit with a coded slice:
/// without `at_eof` the caller reads more and asks again (the access unit's end is only known
/// once the first NAL unit of the next one is complete); with `at_eof`, the bytes left hold no
/// picture (a trailing parameter set, garbage).
///
/// A NAL unit is taken as complete only when another start code follows it (or at the end of
/// the data with `at_eof`), so a NAL unit cut by the read buffer is never looked at.
pub fn next_access_unit(data: &[u8], from: usize, at_eof: bool) -> Option<(usize, usize)> {
    let mut pos = from.min(data.len());
    // First start code: the access unit's start.
    let (sc, mut nal_at) = find_start(&data[pos..]).map(|(s, e)| (pos + s, pos + e))?;
    let start = widen(data, sc, from.min(sc));
    pos = nal_at;
    let mut seen_slice = false;
    loop {
        // The NAL unit at `nal_at` runs to the next start code (exclusive).
        let (nal_end, next_nal) = match find_start(&data[pos..]) {
            Some((s, e)) => (pos + s, Some(pos + e)),
            None if at_eof => (data.len(), None),
            None => return None,
        };
        let nal = &data[nal_at..nal_end];
        let t = nal_type(nal);
        let begins_new = match t {
            NAL_SLICE | NAL_IDR => {
                let new = seen_slice && first_mb_zero(nal);
                seen_slice = true;
                new
            }
            NAL_AUD | NAL_SPS | NAL_PPS | NAL_SEI | 14..=18 => seen_slice,
            _ => false,
        };
        if begins_new {
            // `nal_at` is just past this NAL unit's start code.
            let sc = nal_at - 3;
            return Some((start, widen(data, sc, start)));
        }
        match next_nal {
            Some(n) => {
                nal_at = n;
                pos = n;
            }
            None => return seen_slice.then_some((start, data.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(v: &mut Vec<u8>, nal: &[u8]) {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(nal);
    }

    // Slice headers: first byte after the NAL header starts with ue(first_mb_in_slice).
    // 0x88 = 1 000 1000: first_mb 0, slice_type ue '0001000' -> 7 (I). 0x40 = 010..: first_mb 1.
    const IDR0: &[u8] = &[0x65, 0x88, 0x84, 0x21];
    const IDR1: &[u8] = &[0x65, 0x40, 0x84, 0x21];
    const P0: &[u8] = &[0x41, 0x9a, 0x21, 0x33];
    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn all(d: &[u8]) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut pos = 0;
        while let Some((s, e)) = next_access_unit(d, pos, true) {
            assert!(s >= pos && s < e && e <= d.len(), "{s} {e} {pos} {}", d.len());
            v.push((s, e));
            pos = e;
            assert!(v.len() <= d.len());
        }
        v
    }

    #[test]
    fn splits_at_aud_params_and_first_mb_zero() {
        let mut d = b"junk".to_vec();
        let a0 = d.len();
        sc(&mut d, &[0x09, 0xf0]);
        sc(&mut d, SPS);
        sc(&mut d, PPS);
        sc(&mut d, IDR0);
        sc(&mut d, IDR1); // second slice of the same picture
        let a1 = d.len();
        sc(&mut d, P0); // new picture, no AUD
        let a2 = d.len();
        sc(&mut d, &[0x06, 0x05, 0x01, 0x80]); // SEI starts the next one
        d.extend_from_slice(&[0, 0, 1]); // three-byte start code
        d.extend_from_slice(P0);
        let a3 = d.len();
        sc(&mut d, SPS);
        sc(&mut d, PPS);
        sc(&mut d, IDR0);
        let a4 = d.len();
        sc(&mut d, SPS); // a trailing parameter set: no picture
        assert_eq!(all(&d), vec![(a0, a1), (a1, a2), (a2, a3), (a3, a4)]);
        // Without the end of file, the last picture isn't known to be complete.
        let mut pos = 0;
        let mut n = 0;
        while let Some((_, e)) = next_access_unit(&d[..a4], pos, false) {
            pos = e;
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn never_panics_on_garbage_or_truncation() {
        let mut d = Vec::new();
        for _ in 0..3 {
            sc(&mut d, &[0x09, 0xf0]);
            sc(&mut d, SPS);
            sc(&mut d, PPS);
            sc(&mut d, IDR0);
            sc(&mut d, P0);
        }
        for cut in 0..=d.len() {
            for eof in [false, true] {
                let mut pos = 0;
                let mut guard = 0;
                while let Some((s, e)) = next_access_unit(&d[..cut], pos, eof) {
                    assert!(s >= pos && s < e && e <= cut);
                    pos = e;
                    guard += 1;
                    assert!(guard <= cut);
                }
                for from in [0, 1, cut / 2, cut, cut + 5, usize::MAX] {
                    let _ = next_access_unit(&d[..cut], from, eof);
                }
            }
        }
        // Pseudo-random bytes rich in zeros and ones.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..2000 {
            let len = n % 200;
            let g: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 5 {
                        0 | 1 => 0,
                        2 => 1,
                        3 => [0x65, 0x41, 0x09, 0x67, 0x68, 0x80, 0x88][(x >> 8) as usize % 7],
                        _ => (x >> 16) as u8,
                    }
                })
                .collect();
            all(&g);
            let _ = next_access_unit(&g, 0, false);
        }
        assert_eq!(next_access_unit(&[], 0, true), None);
        assert_eq!(next_access_unit(&[0, 0, 1], 0, true), None);
        assert_eq!(next_access_unit(&[0, 0, 1, 0x65], 0, true), Some((0, 4)));
    }
}
