//! A 5x7 bitmap font with only the characters the timestamp overlay draws:
//! `0-9`, `-`, `:`, space, `U`, `T`, `C`.

/// Glyph width and height in font pixels.
pub const GLYPH_W: usize = 5;
pub const GLYPH_H: usize = 7;

/// One glyph: 7 rows, the 5 low bits of each (bit 4 = leftmost column).
pub type Glyph = [u8; GLYPH_H];

const BLANK: Glyph = [0; GLYPH_H];

/// The glyph for `c`; characters outside the set draw as a blank.
pub fn glyph(c: u8) -> &'static Glyph {
    const DIGITS: [Glyph; 10] = [
        [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
        [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
        [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
        [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
        [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
        [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
        [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
        [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
        [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
    ];
    const DASH: Glyph = [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00];
    const COLON: Glyph = [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00];
    const U: Glyph = [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E];
    const T: Glyph = [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04];
    const C: Glyph = [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E];
    match c {
        b'0'..=b'9' => &DIGITS[(c - b'0') as usize],
        b'-' => &DASH,
        b':' => &COLON,
        b'U' => &U,
        b'T' => &T,
        b'C' => &C,
        _ => &BLANK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_of_a_timestamp_has_a_distinct_glyph() {
        let set = b"0123456789-:UTC";
        for (i, a) in set.iter().enumerate() {
            assert_ne!(glyph(*a), &BLANK, "{}", *a as char);
            assert!(glyph(*a).iter().all(|r| r & !0x1F == 0), "{}: bits outside 5 columns", *a as char);
            for b in &set[i + 1..] {
                assert_ne!(glyph(*a), glyph(*b), "{} and {} look alike", *a as char, *b as char);
            }
        }
        assert_eq!(glyph(b' '), &BLANK);
        assert_eq!(glyph(b'x'), &BLANK);
    }
}
