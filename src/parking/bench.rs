//! `blackbox bench-motion CLIP.mjpeg PICTURES` (hidden; scripts/bench's "parking" section): runs
//! parking mode's motion analysis — the 1/8-scale grey decode and the block check — over the
//! clip's JPEGs (looped) and prints what it found; its CPU time is what the bench measures.

use super::motion::Motion;

pub fn run(args: &[String]) -> i32 {
    let [clip, n] = args else {
        eprintln!("usage: blackbox bench-motion CLIP.mjpeg PICTURES");
        return 2;
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("bench-motion: PICTURES must be a number, not {n:?}");
        return 2;
    };
    let data = match std::fs::read(clip) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bench-motion: {clip}: {e}");
            return 1;
        }
    };
    // Concatenated JPEGs: each starts with SOI (FF D8), which entropy-coded data never holds.
    let starts: Vec<usize> = data.windows(2).enumerate().filter(|(_, w)| w == &[0xFF, 0xD8]).map(|(i, _)| i).collect();
    if starts.is_empty() {
        eprintln!("bench-motion: {clip}: no JPEG in it");
        return 1;
    }
    let frames: Vec<&[u8]> = starts.iter().enumerate().map(|(k, &s)| &data[s..starts.get(k + 1).copied().unwrap_or(data.len())]).collect();
    let mut dec = match turbojpeg::Decompressor::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("bench-motion: {e}");
            return 1;
        }
    };
    let (mut luma, mut m, mut motions, mut size) = (Vec::new(), Motion::new(), 0u64, (0, 0));
    for i in 0..n {
        match super::jpeg_luma_eighth(&mut dec, frames[i % frames.len()], &mut luma) {
            Ok((w, h)) => {
                size = (w, h);
                if m.push(&luma, w, h, w) {
                    motions += 1;
                }
            }
            Err(e) => {
                eprintln!("bench-motion: picture {i}: {e}");
                return 1;
            }
        }
    }
    println!("pictures {n} analysed at {}x{} motions {motions}", size.0, size.1);
    0
}
