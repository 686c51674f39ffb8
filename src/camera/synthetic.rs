//! The built-in test-pattern camera.
//!
//! At construction it renders a short loop of real baseline JPEG frames (YCbCr 4:2:0): colour
//! bars, a box sliding across them, a large frame counter drawn with a built-in 5x7 bitmap font
//! and a caption. The frames live in one contiguous buffer; `next_frame` only paces itself and
//! hands out a slice of it, so it never allocates.
//!
//! This module also holds the frame pacer and clock helpers shared with the `file:` camera.

use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

use super::{Camera, CameraError, Codec, FrameMeta};

/// Largest accepted frame size (8K UHD).
pub const MAX_WIDTH: u32 = 7680;
pub const MAX_HEIGHT: u32 = 4320;
/// Largest accepted nominal frame rate.
pub const MAX_FPS: u32 = 1000;
/// Upper bound on the pre-rendered JPEG bytes; the loop is shortened to stay under it.
pub const MAX_LOOP_BYTES: usize = 8 << 20;
/// Loop length bounds (the loop is nominally one second: `fps` frames).
const MIN_LOOP_FRAMES: u32 = 8;
const MAX_LOOP_FRAMES: u32 = 120;

/// The test-pattern camera. See the module documentation.
pub struct Synthetic {
    width: u32,
    height: u32,
    fps: u32,
    quality: u8,
    /// All pre-rendered JPEGs, back to back.
    jpegs: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is frame `i`; `offsets.len()` = frames + 1.
    offsets: Vec<usize>,
    next: usize,
    pacer: Pacer,
}

impl Synthetic {
    /// Renders the loop. `quality` is the JPEG quality, clamped to 1..=100.
    pub fn new(width: u32, height: u32, fps: u32, quality: u8) -> Result<Synthetic, CameraError> {
        if width == 0 || height == 0 || width > MAX_WIDTH || height > MAX_HEIGHT {
            return Err(CameraError::Invalid(format!(
                "synthetic: frame size {width}x{height} out of range (1x1 to {MAX_WIDTH}x{MAX_HEIGHT})"
            )));
        }
        if fps == 0 || fps > MAX_FPS {
            return Err(CameraError::Invalid(format!(
                "synthetic: frame rate {fps} out of range (1 to {MAX_FPS} fps)"
            )));
        }
        let quality = quality.clamp(1, 100);
        let mut want = fps.clamp(MIN_LOOP_FRAMES, MAX_LOOP_FRAMES) as usize;

        let pixels = width as usize * height as usize * 3;
        let mut rgb: Vec<u8> = Vec::new();
        rgb.try_reserve_exact(pixels)
            .map_err(|_| oom(width, height))?;
        rgb.resize(pixels, 0);

        let mut jpegs: Vec<u8> = Vec::new();
        let mut offsets: Vec<usize> = Vec::with_capacity(want + 1);
        offsets.push(0);
        let caption2 = caption_line(width, height, fps);
        // libjpeg-turbo, as for raw cameras (baseline, 4:2:0).
        let jpeg_err = |e: turbojpeg::Error| CameraError::Invalid(format!("synthetic: JPEG encoding failed: {e}"));
        let mut tj = turbojpeg::Compressor::new().map_err(jpeg_err)?;
        tj.set_quality(i32::from(quality)).map_err(jpeg_err)?;
        tj.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(jpeg_err)?;
        let mut i = 0;
        while i < want {
            render(&mut rgb, width, height, i, want, &caption2);
            let before = jpegs.len();
            let (w, h) = (width as usize, height as usize);
            let img = turbojpeg::Image { pixels: rgb.as_slice(), width: w, pitch: 3 * w, height: h, format: turbojpeg::PixelFormat::RGB };
            let frame = tj.compress_to_vec(img).map_err(jpeg_err)?;
            jpegs.extend_from_slice(&frame);
            let size = jpegs.len() - before;
            if i > 0 && jpegs.len() > MAX_LOOP_BYTES {
                // Over the bound: drop this frame and end the loop here.
                jpegs.truncate(before);
                break;
            }
            offsets.push(jpegs.len());
            if i == 0 {
                // Estimate the loop length that fits the byte bound (1/8 headroom: frames
                // differ in size a little) and reserve the buffer in one go.
                let per = size + size / 8 + 1;
                want = want.min((MAX_LOOP_BYTES / per).max(1));
                let _ = jpegs.try_reserve_exact(per * want);
            }
            i += 1;
        }
        drop(rgb);
        jpegs.shrink_to_fit();
        offsets.shrink_to_fit();
        Ok(Synthetic {
            width,
            height,
            fps,
            quality,
            jpegs,
            offsets,
            next: 0,
            pacer: Pacer::new(fps),
        })
    }

    /// Number of frames in the pre-rendered loop.
    pub fn loop_frames(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total bytes of the pre-rendered loop.
    pub fn loop_bytes(&self) -> usize {
        self.jpegs.len()
    }

    /// Frame `i` of the loop (`i < loop_frames()`), without pacing.
    pub fn loop_frame(&self, i: usize) -> Option<&[u8]> {
        let start = *self.offsets.get(i)?;
        let end = *self.offsets.get(i + 1)?;
        self.jpegs.get(start..end)
    }

    /// The JPEG quality the loop was encoded with.
    pub fn quality(&self) -> u8 {
        self.quality
    }
}

fn oom(width: u32, height: u32) -> CameraError {
    CameraError::Invalid(format!(
        "synthetic: out of memory rendering {width}x{height} frames"
    ))
}

impl Camera for Synthetic {
    fn describe(&self) -> String {
        format!(
            "synthetic test pattern {}x{} @ {} fps ({}-frame loop, {} KiB, JPEG q{})",
            self.width,
            self.height,
            self.fps,
            self.loop_frames(),
            self.jpegs.len().div_ceil(1024),
            self.quality
        )
    }

    fn fps(&self) -> u32 {
        self.fps
    }

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn losses(&self) -> crate::camera::Losses {
        crate::camera::Losses { deadline: self.pacer.missed(), ..Default::default() }
    }

    fn next_frame(&mut self) -> Result<(FrameMeta, &[u8]), CameraError> {
        let (mono_ns, missed) = self.pacer.wait();
        // The frame's own production time, which is in the past when the caller came late.
        let utc_ns = utc_now_ns() - mono_now_ns().saturating_sub(mono_ns) as i64;
        let n = self.loop_frames();
        let i = if self.next < n { self.next } else { 0 };
        self.next = if i + 1 < n { i + 1 } else { 0 };
        let (start, end) = (self.offsets[i], self.offsets[i + 1]);
        let meta = FrameMeta {
            mono_ns,
            utc_ns,
            codec: Codec::Jpeg,
            key: true,
            lost_before: missed.min(u32::MAX as u64) as u32,
        };
        Ok((meta, &self.jpegs[start..end]))
    }
}

// ---------------------------------------------------------------------------------------------
// Clocks and pacing (shared with the file camera).

fn ts_ns(ts: rustix::time::Timespec) -> i128 {
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_MONOTONIC in ns.
pub(crate) fn mono_now_ns() -> u64 {
    ts_ns(clock_gettime(ClockId::Monotonic)).clamp(0, u64::MAX as i128) as u64
}

/// CLOCK_REALTIME in ns since the Unix epoch.
pub(crate) fn utc_now_ns() -> i64 {
    ts_ns(clock_gettime(ClockId::Realtime)).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Sleeps until the monotonic clock reaches `deadline_ns`.
fn sleep_until(deadline_ns: u64) -> u64 {
    loop {
        let now = mono_now_ns();
        if now >= deadline_ns {
            return now;
        }
        std::thread::sleep(Duration::from_nanos(deadline_ns - now));
    }
}

/// Buffers a paced camera has, as a V4L2 driver's default mmap ring.
pub(crate) const PACED_BUFFERS: u64 = 4;

/// Paces frames like a real camera with a fixed ring of buffers: frame `k` after the (re)start
/// is produced at `base + k / fps` whether or not anybody is waiting for it, and is kept only
/// if a buffer is free then. The caller holds one buffer (the frame it was handed last) until
/// its next call, so `PACED_BUFFERS - 1` frames can wait for it; a frame produced while they
/// are all full is dropped and counted in [`Pacer::missed`], exactly as a V4L2 driver drops it
/// (its sequence number jumps). A caller that comes late gets the waiting frames at once,
/// each with its own production time, and frames after that at the camera's pace.
pub(crate) struct Pacer {
    fps: u64,
    base_ns: u64,
    started: bool,
    /// Frames produced so far (kept or dropped): frame `produced` is the next to be produced.
    produced: u64,
    /// Kept frames waiting for the caller, oldest first (at most `PACED_BUFFERS - 1`).
    waiting: heapless::Deque<u64, { PACED_BUFFERS as usize }>,
    missed: u64,
}

impl Pacer {
    pub(crate) fn new(fps: u32) -> Pacer {
        Pacer { fps: fps.max(1) as u64, base_ns: 0, started: false, produced: 0, waiting: heapless::Deque::new(), missed: 0 }
    }

    /// Production time of frame `k`.
    fn time_of(&self, k: u64) -> u64 {
        let offset = (k as u128 * 1_000_000_000 / self.fps as u128).min(u64::MAX as u128) as u64;
        self.base_ns.saturating_add(offset)
    }

    /// Frames produced up to `now` (those due at or before it).
    fn due_by(&self, now: u64) -> u64 {
        let since = now.saturating_sub(self.base_ns) as u128;
        (since * self.fps as u128 / 1_000_000_000).min(u64::MAX as u128 - 1) as u64 + 1
    }

    /// Produces the frames due by `now`: each is kept while a buffer is free, else dropped.
    fn produce(&mut self, now: u64) {
        let due = self.due_by(now);
        if due <= self.produced {
            return;
        }
        let new = due - self.produced;
        let room = (PACED_BUFFERS - 1).saturating_sub(self.waiting.len() as u64);
        let kept = new.min(room);
        for k in self.produced..self.produced + kept {
            let _ = self.waiting.push_back(k);
        }
        self.missed += new - kept;
        self.produced = due;
    }

    /// Waits for the next frame and returns its production time (monotonic ns) and how many
    /// frames were dropped since the previous call.
    pub(crate) fn wait(&mut self) -> (u64, u64) {
        let now = mono_now_ns();
        if !self.started {
            self.started = true;
            self.base_ns = now;
            self.produced = 1;
            return (now, 0);
        }
        let missed_before = self.missed;
        self.produce(now);
        let k = match self.waiting.pop_front() {
            Some(k) => k,
            None => {
                let k = self.produced;
                sleep_until(self.time_of(k));
                self.produced = k + 1;
                k
            }
        };
        (self.time_of(k), self.missed - missed_before)
    }

    /// Frames dropped so far because every buffer was full.
    pub(crate) fn missed(&self) -> u64 {
        self.missed
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering.

type Rgb = [u8; 3];

const WHITE: Rgb = [235, 235, 235];
const BLACK: Rgb = [16, 16, 16];
/// 75% colour bars: white, yellow, cyan, green, magenta, red, blue.
const BARS: [Rgb; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

fn caption_line(width: u32, height: u32, fps: u32) -> String {
    format!("{width}X{height} @ {fps} FPS")
}

/// Draws frame `index` of a `count`-frame loop into `rgb` (`width * height * 3` bytes).
fn render(rgb: &mut [u8], width: u32, height: u32, index: usize, count: usize, caption: &str) {
    let w = width as usize;
    let h = height as usize;
    let bars_h = (h * 2 / 3).max(1);
    let ramp_h = h / 12;

    // Colour bars: render one row, copy it down.
    for x in 0..w {
        let c = BARS[(x * BARS.len() / w).min(BARS.len() - 1)];
        rgb[x * 3..x * 3 + 3].copy_from_slice(&c);
    }
    for y in 1..bars_h.min(h) {
        rgb.copy_within(0..w * 3, y * w * 3);
    }
    // Grey ramp.
    if ramp_h > 0 && bars_h < h {
        let row0 = bars_h * w * 3;
        for x in 0..w {
            let v = (16 + x * 219 / w.max(1)) as u8;
            rgb[row0 + x * 3..row0 + x * 3 + 3].copy_from_slice(&[v, v, v]);
        }
        for y in bars_h + 1..(bars_h + ramp_h).min(h) {
            rgb.copy_within(row0..row0 + w * 3, y * w * 3);
        }
    }
    // Dark caption strip.
    let strip_y = (bars_h + ramp_h).min(h);
    fill_rect(rgb, w, h, 0, strip_y, w, h - strip_y, BLACK);

    // The sliding box: black frame, white inside; crosses the picture once per loop.
    let bs = (h / 6).max(2);
    let travel = w.saturating_sub(bs);
    let bx = if count > 1 {
        index * travel / (count - 1)
    } else {
        0
    };
    let by = bars_h.saturating_sub(bs + h / 24);
    fill_rect(rgb, w, h, bx, by, bs, bs, BLACK);
    let border = (bs / 10).max(1);
    fill_rect(
        rgb,
        w,
        h,
        bx + border,
        by + border,
        bs.saturating_sub(2 * border),
        bs.saturating_sub(2 * border),
        WHITE,
    );

    // The frame counter, large, centred on the bars.
    let mut digits = [0u8; 20];
    let text = format_counter(index, count, &mut digits);
    let scale = (h / 35).max(1);
    let tw = text_width(text.len(), scale);
    let th = 7 * scale;
    let pad = scale * 2;
    let tx = w.saturating_sub(tw) / 2;
    let ty = (bars_h / 2).saturating_sub(th / 2);
    fill_rect(
        rgb,
        w,
        h,
        tx.saturating_sub(pad),
        ty.saturating_sub(pad),
        tw + 2 * pad,
        th + 2 * pad,
        BLACK,
    );
    draw_text(rgb, w, h, tx, ty, scale, text, WHITE);

    // Captions in the strip.
    let title = b"BLACKBOX TEST PATTERN";
    let strip_h = h - strip_y;
    let s1 = (w * 9 / 10 / text_width(title.len(), 1))
        .min(strip_h / 20)
        .max(1);
    let y1 = strip_y + strip_h / 8;
    draw_text(
        rgb,
        w,
        h,
        w.saturating_sub(text_width(title.len(), s1)) / 2,
        y1,
        s1,
        title,
        WHITE,
    );
    let cap = caption.as_bytes();
    let s2 = (s1 / 2).max(1);
    let y2 = y1 + 9 * s1;
    draw_text(
        rgb,
        w,
        h,
        w.saturating_sub(text_width(cap.len(), s2)) / 2,
        y2,
        s2,
        cap,
        BARS[1],
    );
}

/// "index" zero-padded to the width of the largest index in the loop.
fn format_counter(index: usize, count: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut width = 1;
    let mut m = count.saturating_sub(1);
    while m >= 10 {
        m /= 10;
        width += 1;
    }
    let mut v = index;
    let mut n = 0;
    while n < width || v > 0 {
        if n == buf.len() {
            break;
        }
        buf[buf.len() - 1 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    &buf[buf.len() - n..]
}

/// Width in pixels of `chars` glyphs at `scale` (6 columns each, minus the last gap).
fn text_width(chars: usize, scale: usize) -> usize {
    (chars * 6).saturating_sub(1) * scale
}

/// Fills a rectangle, clipped to the picture.
#[allow(clippy::too_many_arguments)]
fn fill_rect(rgb: &mut [u8], w: usize, h: usize, x: usize, y: usize, rw: usize, rh: usize, c: Rgb) {
    let x1 = x.saturating_add(rw).min(w);
    let y1 = y.saturating_add(rh).min(h);
    if x >= x1 || y >= y1 {
        return;
    }
    for yy in y..y1 {
        let row = &mut rgb[(yy * w + x) * 3..(yy * w + x1) * 3];
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&c);
        }
    }
}

/// Draws `text` with the 5x7 font, each font pixel a `scale`x`scale` square; clipped.
#[allow(clippy::too_many_arguments)]
fn draw_text(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    x: usize,
    y: usize,
    scale: usize,
    text: &[u8],
    c: Rgb,
) {
    for (k, &ch) in text.iter().enumerate() {
        let gx = x + k * 6 * scale;
        if gx >= w {
            break;
        }
        let glyph = glyph(ch);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    fill_rect(
                        rgb,
                        w,
                        h,
                        gx + col * scale,
                        y + row * scale,
                        scale,
                        scale,
                        c,
                    );
                }
            }
        }
    }
}

/// 5x7 glyphs; bit 4 is the leftmost column. Unknown characters render blank.
fn glyph(c: u8) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        b'0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        b'1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        b'2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        b'3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        b'4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        b'5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        b'6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        b'7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        b'8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        b'9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        b'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        b'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        b'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        b'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        b'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        b'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        b'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        b'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        b'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        b'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        b'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        b'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        b'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        b'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        b'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        b'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        b'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        b'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        b'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        b'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        b'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        b'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        b'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        b'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        b'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        b'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        b'/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        b':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        b'.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        b'-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        b'@' => [0x0E, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0E],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes_and_rates() {
        for (w, h, fps) in [
            (0, 240, 30),
            (320, 0, 30),
            (7681, 240, 30),
            (320, 4321, 30),
            (320, 240, 0),
            (320, 240, 1001),
        ] {
            match Synthetic::new(w, h, fps, 80) {
                Err(CameraError::Invalid(_)) => {}
                Err(e) => panic!("{w}x{h}@{fps}: wrong error {e}"),
                Ok(_) => panic!("{w}x{h}@{fps}: accepted"),
            }
        }
    }

    #[test]
    fn frames_are_jpegs_and_differ() {
        for (w, h) in [(320, 240), (64, 48), (1, 1), (17, 9)] {
            let cam = Synthetic::new(w, h, 10, 75).unwrap();
            assert!(cam.loop_frames() >= MIN_LOOP_FRAMES as usize, "{w}x{h}");
            for i in 0..cam.loop_frames() {
                let f = cam.loop_frame(i).unwrap();
                assert_eq!(&f[..2], &[0xFF, 0xD8], "{w}x{h} frame {i} starts with SOI");
                assert_eq!(
                    &f[f.len() - 2..],
                    &[0xFF, 0xD9],
                    "{w}x{h} frame {i} ends with EOI"
                );
                assert_eq!(super::super::file::jpeg_dimensions(f), Some((w, h)));
                assert_eq!(super::super::file::next_jpeg(f, 0), Some((0, f.len())));
            }
            if w >= 64 {
                for i in 0..cam.loop_frames() {
                    for j in 0..i {
                        assert_ne!(
                            cam.loop_frame(i),
                            cam.loop_frame(j),
                            "{w}x{h} frames {i} and {j}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn next_frame_cycles_through_the_loop() {
        let mut cam = Synthetic::new(32, 24, 1000, 50).unwrap();
        let n = cam.loop_frames();
        let first = cam.loop_frame(0).unwrap().to_vec();
        let mut last_mono = 0;
        for k in 0..2 * n + 1 {
            let (meta, frame) = cam.next_frame().unwrap();
            assert_eq!(meta.codec, Codec::Jpeg);
            assert!(meta.key);
            assert!(meta.mono_ns >= last_mono);
            assert!(meta.utc_ns > 1_500_000_000_000_000_000);
            last_mono = meta.mono_ns;
            if k % n == 0 {
                assert_eq!(frame, &first[..]);
            }
        }
    }

    #[test]
    fn counter_formatting() {
        let mut b = [0u8; 20];
        assert_eq!(format_counter(7, 30, &mut b), b"07");
        assert_eq!(format_counter(0, 8, &mut b), b"0");
        assert_eq!(format_counter(99, 120, &mut b), b"099");
    }

    #[test]
    fn a_late_caller_gets_the_buffered_frames_and_the_rest_are_counted() {
        let mut p = Pacer::new(100);
        let (t0, m0) = p.wait();
        assert_eq!(m0, 0);
        std::thread::sleep(Duration::from_millis(95)); // frames 1..=9 produced meanwhile
        let (t1, m1) = p.wait();
        let (t2, _) = p.wait();
        let (t3, _) = p.wait();
        // Three buffers were free: frames 1, 2, 3 kept (their own times), the rest dropped.
        assert_eq!([t1 - t0, t2 - t0, t3 - t0], [10_000_000, 20_000_000, 30_000_000]);
        assert!(m1 >= 6, "dropped frames are counted: {m1}");
        let missed = p.missed();
        let (t4, m4) = p.wait(); // the next produced frame, on the schedule
        assert_eq!((t4 - t0) % 10_000_000, 0);
        assert!(t4 - t0 >= 100_000_000);
        assert_eq!(p.missed(), missed + m4);
    }

    #[test]
    fn a_punctual_caller_loses_nothing() {
        let mut p = Pacer::new(200);
        let (t0, _) = p.wait();
        for k in 1..40u64 {
            let (t, m) = p.wait();
            assert_eq!((t - t0, m), (k * 5_000_000, 0));
        }
        assert_eq!(p.missed(), 0);
    }
}
