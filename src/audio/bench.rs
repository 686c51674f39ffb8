//! `blackbox bench-audio PCM RATE [-o OUT.aac]`: encodes a raw S16LE mono file with the
//! recorder's AAC-LC settings and reports the CPU time and the bytes (scripts/bench, "Audio").
//! `-o` writes the access units as ADTS, for ffmpeg to decode.

use super::aac::{Aac, FRAME, MAX_AU};
use std::io::Write;

/// The recorder's bitrate for a rate: 2 bits per sample, at most 64 kbit/s.
pub fn bitrate_for(rate: u32) -> u32 {
    (rate * 2).clamp(16_000, 64_000)
}

/// An ADTS header for a raw access unit of `len` bytes (AAC-LC, mono, `rate`).
pub fn adts_header(rate: u32, len: usize) -> [u8; 7] {
    const RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let fi = RATES.iter().position(|&r| r == rate).unwrap_or(8) as u8;
    let full = (len + 7) as u32;
    [
        0xff,
        0xf1,
        (1 << 6) | (fi << 2), // profile LC (2 - 1), frequency index, private 0, channel config high bit 0
        (1 << 6) | ((full >> 11) & 3) as u8, // channel config 1 (low 2 bits), length high bits
        ((full >> 3) & 0xff) as u8,
        (((full & 7) << 5) as u8) | 0x1f,
        0xfc,
    ]
}

/// This thread's CPU time, ns.
fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

pub fn run(args: &[String]) -> i32 {
    let (pcm_path, rate, out) = match args {
        [p, r] => (p, r, None),
        [p, r, o, f] if o == "-o" => (p, r, Some(f)),
        _ => {
            eprintln!("usage: blackbox bench-audio PCM_S16LE_MONO RATE [-o OUT.aac]");
            return 2;
        }
    };
    let Ok(rate) = rate.parse::<u32>() else {
        eprintln!("bench-audio: bad rate {rate:?}");
        return 2;
    };
    let pcm = match std::fs::read(pcm_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench-audio: {pcm_path}: {e}");
            return 1;
        }
    };
    let samples: Vec<i16> = pcm.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
    let mut enc = match Aac::new(rate, bitrate_for(rate)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench-audio: {e}");
            return 1;
        }
    };
    let mut file = match out.map(std::fs::File::create).transpose() {
        Ok(f) => f.map(std::io::BufWriter::new),
        Err(e) => {
            eprintln!("bench-audio: {e}");
            return 1;
        }
    };
    let cpu0 = cpu_ns();
    let mut au = [0u8; MAX_AU];
    let (mut aus, mut bytes) = (0u64, 0u64);
    // Whole frames, then silence to flush the encoder's look-ahead (as many frames as its delay).
    let tail = (enc.delay as usize).div_ceil(FRAME) + 1;
    let frames = samples.len() / FRAME;
    for f in 0..frames + tail {
        let mut buf = [0i16; FRAME];
        if f < frames {
            buf.copy_from_slice(&samples[f * FRAME..(f + 1) * FRAME]);
        }
        match enc.encode(&buf, &mut au) {
            Ok(0) => {}
            Ok(n) => {
                aus += 1;
                bytes += n as u64;
                if let Some(w) = file.as_mut()
                    && (w.write_all(&adts_header(rate, n)).is_err() || w.write_all(&au[..n]).is_err())
                {
                    eprintln!("bench-audio: writing the output failed");
                    return 1;
                }
            }
            Err(e) => {
                eprintln!("bench-audio: {e}");
                return 1;
            }
        }
    }
    let cpu = cpu_ns().saturating_sub(cpu0);
    if let Some(mut w) = file
        && w.flush().is_err()
    {
        eprintln!("bench-audio: writing the output failed");
        return 1;
    }
    let secs = (frames * FRAME) as f64 / f64::from(rate);
    println!(
        "bench-audio: {secs:.1} s of {rate} Hz mono in {:.3} s CPU ({:.3} % of a core), {aus} access units, {bytes} bytes ({:.0} bytes/min), delay {} samples",
        cpu as f64 / 1e9,
        cpu as f64 / 1e9 / secs.max(1e-9) * 100.0,
        bytes as f64 / secs.max(1e-9) * 60.0,
        enc.delay
    );
    0
}
