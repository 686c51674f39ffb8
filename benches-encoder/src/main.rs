//! Issue 3, item 2: which JPEG encoder should blackbox use for raw (YUYV) cameras?
//!
//! Encodes the same raw 1280x720 YUYV frames at quality 80, 4:2:2 (the camera's own chroma
//! layout, and what ffmpeg's mjpeg produces from yuyv422), with each candidate, interleaved
//! round by round, and prints per candidate: median µs/frame, bytes/frame, and heap
//! allocations/frame seen by Rust's global allocator (C mallocs inside libjpeg-turbo are not
//! seen here: count those with `count` mode under an LD_PRELOAD malloc counter, see README).
//!
//!   benches-encoder bench RAW W H [ROUNDS] [OUTDIR]   # timing table (+ one .jpg per candidate)
//!   benches-encoder count RAW W H CANDIDATE N         # encode N frames and exit (for LD_PRELOAD)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
// SAFETY: forwards to the system allocator, counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

const QUALITY: u8 = 80;

trait Candidate {
    fn name(&self) -> &'static str;
    /// Encode one YUYV frame (stride = 2*width); returns the JPEG length in `out()`.
    fn encode(&mut self, src: &[u8]) -> usize;
    fn out(&self) -> &[u8];
}

// ---- jpeg-encoder 0.7 (pure Rust; the dependency blackbox already has) --------------------

struct YuyvJe<'a> {
    data: &'a [u8],
    w: u16,
    h: u16,
}
impl jpeg_encoder::ImageBuffer for YuyvJe<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }
    fn width(&self) -> u16 {
        self.w
    }
    fn height(&self) -> u16 {
        self.h
    }
    fn fill_buffers(&self, y: u16, b: &mut [Vec<u8>; 4]) {
        let row = &self.data[y as usize * self.w as usize * 2..][..self.w as usize * 2];
        for px in row.chunks_exact(4) {
            let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
            b[0].push(y0);
            b[0].push(y1);
            b[1].push(u);
            b[1].push(u);
            b[2].push(v);
            b[2].push(v);
        }
    }
}

struct JpegEncoderCrate {
    w: u16,
    h: u16,
    buf: Vec<u8>,
    len: usize,
}
impl Candidate for JpegEncoderCrate {
    fn name(&self) -> &'static str {
        "jpeg-encoder 0.7.1 (simd)"
    }
    fn encode(&mut self, src: &[u8]) -> usize {
        let cap = self.buf.len();
        let mut w: &mut [u8] = &mut self.buf[..];
        let mut e = jpeg_encoder::Encoder::new(&mut w, QUALITY);
        e.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_2);
        e.encode_image(YuyvJe { data: src, w: self.w, h: self.h }).expect("jpeg-encoder");
        self.len = cap - w.len();
        self.len
    }
    fn out(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

// ---- rusty_jpeg 0.4.8 (pure Rust, fork of jpeg-encoder with a YUYV input and NEON) ---------

struct RustyJpeg {
    w: u16,
    h: u16,
    buf: Vec<u8>,
    len: usize,
}
impl Candidate for RustyJpeg {
    fn name(&self) -> &'static str {
        "rusty_jpeg 0.4.8 (simd)"
    }
    fn encode(&mut self, src: &[u8]) -> usize {
        let mut sink = rusty_jpeg::encode::SliceWriter::new(&mut self.buf);
        let img = rusty_jpeg::encode::YuyvImage::new(src, self.w as usize * 2, self.w, self.h)
            .expect("yuyv geometry");
        let mut e = rusty_jpeg::encode::Encoder::new(&mut sink, QUALITY);
        e.set_sampling_factor(rusty_jpeg::encode::SamplingFactor::R_4_2_2);
        e.encode_image(img).expect("rusty_jpeg");
        self.len = sink.written();
        self.len
    }
    fn out(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

// ---- turbojpeg 1.5 (bundled libjpeg-turbo, built with cmake + nasm) ------------------------

struct TurboJpeg {
    w: usize,
    h: usize,
    c: turbojpeg::Compressor,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    buf: Vec<u8>,
    len: usize,
}
impl TurboJpeg {
    fn new(w: usize, h: usize) -> Self {
        let mut c = turbojpeg::Compressor::new().expect("tj init");
        c.set_quality(QUALITY as i32).unwrap();
        c.set_subsamp(turbojpeg::Subsamp::Sub2x1).unwrap();
        let cap = turbojpeg::compressed_buf_len(w, h, turbojpeg::Subsamp::Sub2x1).unwrap();
        TurboJpeg { w, h, c, y: vec![0; w * h], u: vec![0; w * h / 2], v: vec![0; w * h / 2], buf: vec![0; cap], len: 0 }
    }
}
/// YUYV → planar 4:2:2 (I422): a plain deinterleave, no arithmetic.
fn yuyv_to_i422(src: &[u8], w: usize, h: usize, y: &mut [u8], u: &mut [u8], v: &mut [u8]) {
    for r in 0..h {
        let s = &src[r * w * 2..][..w * 2];
        let yr = &mut y[r * w..][..w];
        let ur = &mut u[r * w / 2..][..w / 2];
        let vr = &mut v[r * w / 2..][..w / 2];
        for (i, px) in s.chunks_exact(4).enumerate() {
            yr[2 * i] = px[0];
            ur[i] = px[1];
            yr[2 * i + 1] = px[2];
            vr[i] = px[3];
        }
    }
}
impl Candidate for TurboJpeg {
    fn name(&self) -> &'static str {
        "turbojpeg 1.5.1 (libjpeg-turbo, I422 planes)"
    }
    fn encode(&mut self, src: &[u8]) -> usize {
        yuyv_to_i422(src, self.w, self.h, &mut self.y, &mut self.u, &mut self.v);
        let img = turbojpeg::YuvPlanesImage {
            y_plane: &self.y[..],
            u_plane: &self.u[..],
            v_plane: &self.v[..],
            width: self.w,
            height: self.h,
            y_stride: self.w,
            u_stride: self.w / 2,
            v_stride: self.w / 2,
            subsamp: turbojpeg::Subsamp::Sub2x1,
        };
        self.len = self.c.compress_yuv_planes_to_slice(&img, &mut self.buf).expect("tj compress");
        self.len
    }
    fn out(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

// ---- image 0.25 (its own JPEG encoder; RGB input only) -------------------------------------

struct ImageCrate {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
    buf: Vec<u8>,
    len: usize,
}
fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}
/// YUYV (BT.601 limited range, what cameras send) → RGB, integer.
fn yuyv_to_rgb(src: &[u8], rgb: &mut [u8]) {
    for (px, o) in src.chunks_exact(4).zip(rgb.chunks_exact_mut(6)) {
        let (u, v) = (px[1] as i32 - 128, px[3] as i32 - 128);
        for (k, yy) in [px[0], px[2]].into_iter().enumerate() {
            let c = 298 * (yy as i32 - 16);
            o[3 * k] = clamp((c + 409 * v + 128) >> 8);
            o[3 * k + 1] = clamp((c - 100 * u - 208 * v + 128) >> 8);
            o[3 * k + 2] = clamp((c + 516 * u + 128) >> 8);
        }
    }
}
impl Candidate for ImageCrate {
    fn name(&self) -> &'static str {
        "image 0.25.10 JpegEncoder (via RGB)"
    }
    fn encode(&mut self, src: &[u8]) -> usize {
        yuyv_to_rgb(src, &mut self.rgb);
        let cap = self.buf.len();
        let mut w: &mut [u8] = &mut self.buf[..];
        let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, QUALITY);
        e.encode(&self.rgb, self.w as u32, self.h as u32, image::ExtendedColorType::Rgb8).expect("image");
        self.len = cap - w.len();
        self.len
    }
    fn out(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn candidates(w: usize, h: usize) -> Vec<Box<dyn Candidate>> {
    let cap = w * h * 4 + 65536;
    vec![
        Box::new(JpegEncoderCrate { w: w as u16, h: h as u16, buf: vec![0; cap], len: 0 }),
        Box::new(RustyJpeg { w: w as u16, h: h as u16, buf: vec![0; cap], len: 0 }),
        Box::new(TurboJpeg::new(w, h)),
        Box::new(ImageCrate { w, h, rgb: vec![0; w * h * 3], buf: vec![0; cap], len: 0 }),
    ]
}

fn load(path: &str, w: usize, h: usize) -> Vec<Vec<u8>> {
    let raw = std::fs::read(path).expect("read raw frames");
    let fsz = w * h * 2;
    assert!(raw.len() >= fsz && raw.len() % fsz == 0, "raw file is not whole {w}x{h} YUYV frames");
    raw.chunks_exact(fsz).map(|c| c.to_vec()).collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: benches-encoder bench RAW W H [ROUNDS] [OUTDIR] | count RAW W H CANDIDATE_INDEX N";
    if a.len() < 5 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (w, h): (usize, usize) = (a[3].parse().unwrap(), a[4].parse().unwrap());
    let frames = load(&a[2], w, h);
    let mut cands = candidates(w, h);
    match a[1].as_str() {
        "count" => {
            let idx: usize = a[5].parse().unwrap();
            let n: usize = a[6].parse().unwrap();
            let c = &mut cands[idx];
            let before = ALLOCS.load(Ordering::Relaxed);
            for i in 0..n {
                c.encode(&frames[i % frames.len()]);
            }
            let rust = ALLOCS.load(Ordering::Relaxed) - before;
            eprintln!("{}: {n} frames, rust allocs {rust}", c.name());
        }
        "bench" => {
            let rounds: usize = a.get(5).map(|s| s.parse().unwrap()).unwrap_or(10);
            let outdir = a.get(6);
            // warm-up: one pass each (first-call allocations, page faults, CPU detection)
            for c in cands.iter_mut() {
                for f in &frames {
                    c.encode(f);
                }
            }
            let n = cands.len();
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); n];
            let mut bytes = vec![0u64; n];
            let mut allocs = vec![0u64; n];
            let mut count = vec![0u64; n];
            for _ in 0..rounds {
                for (k, c) in cands.iter_mut().enumerate() {
                    for f in &frames {
                        let a0 = ALLOCS.load(Ordering::Relaxed);
                        let t = Instant::now();
                        let len = c.encode(f);
                        let dt = t.elapsed().as_secs_f64() * 1e6;
                        allocs[k] += ALLOCS.load(Ordering::Relaxed) - a0;
                        times[k].push(dt);
                        bytes[k] += len as u64;
                        count[k] += 1;
                    }
                }
            }
            println!("{w}x{h} YUYV, quality {QUALITY}, {} frames x {rounds} rounds, interleaved", frames.len());
            println!("| candidate | median µs/frame | p10 | p90 | bytes/frame | Rust allocs/frame |");
            println!("|---|--:|--:|--:|--:|--:|");
            for k in 0..n {
                let t = &mut times[k];
                let med = median(t);
                let p10 = t[t.len() / 10];
                let p90 = t[t.len() * 9 / 10];
                println!(
                    "| {} | {:.0} | {:.0} | {:.0} | {} | {:.2} |",
                    cands[k].name(),
                    med,
                    p10,
                    p90,
                    bytes[k] / count[k],
                    allocs[k] as f64 / count[k] as f64
                );
            }
            if let Some(d) = outdir {
                std::fs::create_dir_all(d).unwrap();
                for (k, c) in cands.iter_mut().enumerate() {
                    c.encode(&frames[0]);
                    std::fs::write(format!("{d}/cand{k}.jpg"), c.out()).unwrap();
                }
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
