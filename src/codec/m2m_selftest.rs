//! `blackbox m2m-selftest`: drives the M2M encoder client ([`super::m2m`]) against whatever
//! stateful encoder the machine has (vicodec's FWHT in the qemu rig, bcm2835-codec's H.264 on
//! a Pi) and checks what the recorder relies on, printing one `m2m-selftest:` line per check:
//!
//! - negotiation: the node is found by enumeration, both queues take their formats;
//! - key frames: the first picture, then exactly every GOP ([`m2m::is_key`]: the driver's
//!   `KEYFRAME` flag, an IDR, the FWHT header's I-frame flag); FWHT: every picture starts with
//!   the FWHT magic; H.264: an IDR NAL in every key frame;
//! - a forced key frame mid-GOP (`FORCE_KEY_FRAME`, or drain + reopen where the device has none);
//! - an injected stall (the CAPTURE buffer withheld: the encoder stops answering) detected
//!   within the deadline, the frame refused, the device reopened by itself, the next picture a
//!   key frame and the GOP counted from there;
//! - no allocation on the encoding thread over the steady frames (the binary's counting
//!   allocator), i.e. per frame: none;
//! - drain at the end (`V4L2_ENC_CMD_STOP` until `LAST`).
//!
//! Frames are a moving YUYV pattern made in memory (the encoder sees real, changing content).

use super::encoder::{H264Settings, VideoEncoder};
use super::m2m::{self, M2mEncoder, M2mSettings, FOURCC_FWHT, FOURCC_H264};
use super::raw::RawFrame;
use crate::alloc_count;
use std::path::PathBuf;
use std::time::Instant;

pub struct Opts {
    pub device: Option<PathBuf>,
    pub codec: u32,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub gop: u32,
    /// Frame (0-based) before which a key frame is requested; 0: none.
    pub force_at: u64,
    /// Frame (0-based) whose picture the encoder withholds; 0: none.
    pub stall_at: u64,
    pub deadline_ms: u32,
    /// Also encode the same frames with OpenH264 and print CPU per frame of both.
    pub bench: bool,
}

/// A still gradient with a 64x64 square moving across it (so inter coding pays off).
fn pattern(buf: &mut [u8], w: usize, h: usize, t: usize) {
    let (bx, by) = ((t * 8) % w.saturating_sub(64).max(1), (t * 4) % h.saturating_sub(64).max(1));
    for r in 0..h {
        let row = &mut buf[r * w * 2..(r + 1) * w * 2];
        for (i, px) in row.chunks_exact_mut(4).enumerate() {
            let x = i * 2;
            let inside = (bx..bx + 64).contains(&x) && (by..by + 64).contains(&r);
            let luma = if inside { 235 } else { ((x / 4 + r / 4) & 0xff) as u8 };
            px[0] = luma;
            px[2] = luma;
            px[1] = if inside { 90 } else { 128 };
            px[3] = if inside { 200 } else { 128 };
        }
    }
}

/// CPU time of the process so far (user + system), seconds: vicodec encodes in the caller's
/// `QBUF`, so its work counts here as system time.
fn cpu_s() -> f64 {
    // SAFETY: all-zero is a valid rusage; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The bench line: CPU per frame of the M2M client (the encoder's own work included where it
/// runs on the CPU, as vicodec does) against OpenH264 on the same frames.
fn bench(o: &Opts, m2m_cpu_per_frame: f64) {
    let (w, h) = (o.width as usize, o.height as usize);
    let s = H264Settings { width: o.width, height: o.height, fps: 30, bitrate_kbps: 2000, keyframe_interval: o.gop };
    let Ok(mut soft) = super::encoder::SoftH264::new(s) else { return };
    let mut frame = vec![0u8; w * h * 2];
    let c0 = cpu_s();
    for i in 0..o.frames {
        pattern(&mut frame, w, h, i as usize);
        let _ = soft.encode(RawFrame::Yuyv { data: &frame, stride: w * 2 });
    }
    let soft_cpu = (cpu_s() - c0) / o.frames.max(1) as f64;
    // The pattern is made in both loops; take its share out of neither (it is the same).
    println!(
        "m2m-selftest: bench cpu per frame: M2M {:.2} ms, software H.264 {:.2} ms, M2M/software {:.2}",
        m2m_cpu_per_frame * 1e3,
        soft_cpu * 1e3,
        m2m_cpu_per_frame / soft_cpu.max(1e-9)
    );
}

/// Runs the checks; the process exit code (0: all passed).
pub fn run(o: &Opts) -> i32 {
    let name = if o.codec == FOURCC_H264 { "H264" } else { "FWHT" };
    let found = match &o.device {
        Some(p) => m2m::probe(p, o.codec).map(|card| (p.clone(), card)),
        None => m2m::find_encoder(o.codec),
    };
    let Some((path, card)) = found else {
        eprintln!("m2m-selftest: FAIL no stateful {name} encoder node");
        return 1;
    };
    println!("m2m-selftest: found {} ({card}) encoding YU12 to {name}", path.display());
    let s = M2mSettings {
        h264: H264Settings { width: o.width, height: o.height, fps: 30, bitrate_kbps: 2000, keyframe_interval: o.gop },
        codec: o.codec,
        deadline_ms: o.deadline_ms,
    };
    let mut enc = match M2mEncoder::open(&path, &card, s) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("m2m-selftest: FAIL open: {e}");
            return 1;
        }
    };
    println!("m2m-selftest: negotiated {}x{}; FORCE_KEY_FRAME: {}", o.width, o.height, enc.has_force_key());
    if o.stall_at > 0 {
        enc.inject_stall_at(o.stall_at + 1);
    }
    let (w, h) = (o.width as usize, o.height as usize);
    let mut frame = vec![0u8; w * h * 2];
    let mut fails = 0u32;
    let mut fail = |what: String| {
        eprintln!("m2m-selftest: FAIL {what}");
        fails += 1;
    };
    // The frame after which the GOP restarts (the first, a forced key, the one after a stall).
    let mut gop_start = 0u64;
    let (mut keys, mut pictures, mut bytes_key, mut bytes_p, mut n_p) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut stalled = false;
    let mut steady_allocs = 0u64;
    let t0 = Instant::now();
    let c0 = cpu_s();
    for i in 0..o.frames {
        pattern(&mut frame, w, h, i as usize);
        if o.force_at > 0 && i == o.force_at {
            enc.request_key_frame();
            gop_start = i;
        }
        // Frames that neither reopen nor follow a reopen/forced key are the steady ones.
        let steady = i > 2 && i != o.force_at && i != o.stall_at && i != o.stall_at + 1;
        let a0 = alloc_count::thread_allocations();
        let r = enc.encode_frame(RawFrame::Yuyv { data: &frame, stride: w * 2 });
        let allocs = alloc_count::thread_allocations() - a0;
        if steady && r.is_ok() {
            steady_allocs += allocs;
        }
        match r {
            Ok(key) => {
                pictures += 1;
                let data = enc.output();
                let want_key = (i - gop_start).is_multiple_of(u64::from(o.gop));
                if key != want_key {
                    fail(format!("frame {i}: key={key}, expected {want_key} (GOP {} from frame {gop_start})", o.gop));
                }
                if key {
                    keys += 1;
                    bytes_key += data.len() as u64;
                } else {
                    n_p += 1;
                    bytes_p += data.len() as u64;
                }
                if o.codec == FOURCC_FWHT && !data.starts_with(&[0x4f, 0x4f, 0x4f, 0x4f]) {
                    fail(format!("frame {i}: no FWHT magic"));
                }
                if o.codec == FOURCC_H264 && key && !crate::codec::h264::nal_units(data).any(|n| crate::codec::h264::nal_type(n) == crate::codec::h264::NAL_IDR) {
                    fail(format!("frame {i}: key frame without an IDR"));
                }
            }
            Err(super::encoder::EncoderError::Stalled(why)) if i == o.stall_at && o.stall_at > 0 => {
                println!("m2m-selftest: stall at frame {i} detected: {why}");
                stalled = true;
                gop_start = i + 1;
                // As the recorder's cameras do after a lost frame: the reopen must meet it
                // (no second reopen, no drain of an empty stream).
                enc.request_key_frame();
            }
            Err(e) => fail(format!("frame {i}: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let m2m_cpu = (cpu_s() - c0) / o.frames.max(1) as f64;
    if o.stall_at > 0 && !stalled {
        fail(format!("the injected stall at frame {} was not detected", o.stall_at));
    }
    if o.stall_at > 0 && (enc.stalls != 1 || enc.reopens < 1) {
        fail(format!("stalls {} reopens {}: expected 1 stall and a reopen", enc.stalls, enc.reopens));
    }
    let want_reopens = u64::from(o.force_at > 0 && !enc.has_force_key()) + u64::from(stalled);
    if enc.reopens != want_reopens {
        fail(format!("{} reopens, expected {want_reopens}", enc.reopens));
    }
    if steady_allocs != 0 {
        fail(format!("{steady_allocs} allocations over the steady frames"));
    }
    if pictures + u64::from(stalled) != o.frames {
        fail(format!("{pictures} pictures for {} frames", o.frames));
    }
    println!(
        "m2m-selftest: {pictures} pictures ({keys} key, mean {} B; {n_p} others, mean {} B) of {} frames in {secs:.1} s; \
         stalls {}, reopens {}, allocations over the steady frames {steady_allocs}",
        bytes_key / keys.max(1),
        bytes_p / n_p.max(1),
        o.frames,
        enc.stalls,
        enc.reopens
    );
    match enc.finish() {
        Ok(n) => println!("m2m-selftest: drained (ENC_CMD_STOP until LAST), {n} pictures came out while draining"),
        Err(e) => fail(format!("drain: {e}")),
    }
    if o.bench {
        bench(o, m2m_cpu);
    }
    if fails == 0 {
        println!("m2m-selftest: PASS");
        0
    } else {
        eprintln!("m2m-selftest: {fails} checks failed");
        1
    }
}
