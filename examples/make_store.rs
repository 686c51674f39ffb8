//! Benchmark helper (scripts/bench export, scripts/bench h264): fills a data directory with
//! SECONDS of footage from a clip (replayed in a loop), timestamped at exactly FPS from
//! 2026-11-21T12:00:00Z, through the real store (60 s segments, default commits).
//!
//! The clip is a concatenated-JPEG stream, or (name ending in `.h264`) an Annex-B H.264 stream
//! that starts with an IDR (e.g. `blackbox bench-encode --h264 -o`): its access units are
//! stored as the recorder's store side stores them (AVCC samples, the avcC handed to the store
//! when the parameter sets change, IDRs flagged).
//!
//!     cargo run --release --example make_store -- CLIP DATA_DIR SECONDS [FPS]

use blackbox::camera::file::FileCamera;
use blackbox::camera::{Camera, Codec, FrameMeta};
use blackbox::codec::h264;
use blackbox::config::Config;
use blackbox::store::Store;
use std::path::Path;

/// 2026-11-21T12:00:00Z
const T0: i64 = 1_795_262_400_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: make_store CLIP DATA_DIR SECONDS [FPS]");
        std::process::exit(2);
    }
    let seconds: u64 = args[3].parse().expect("SECONDS");
    let fps: u64 = args.get(4).map_or(30, |f| f.parse().expect("FPS"));
    let config = Config::default();
    let mut opts = blackbox::cli::store_options(&config);
    opts.fps = fps as u32;
    opts.storage_cap_bytes = u64::MAX / 4;
    opts.min_free_bytes = 0;
    let mut store = Store::open(Path::new(&args[2]), opts).expect("store");
    let meta_of = |k: u64, codec: Codec, key: bool| {
        let t = (k as u128 * 1_000_000_000 / fps as u128) as u64;
        FrameMeta { mono_ns: 1_000_000_000_000 + t, utc_ns: T0 + t as i64, codec, key, lost_before: 0 }
    };
    if args[1].ends_with(".h264") {
        let stream = std::fs::read(&args[1]).expect("clip");
        let aus = access_units(&stream);
        assert!(!aus.is_empty(), "no access units in {}", args[1]);
        let mut ps = h264::ParamSets::default();
        let mut sample = Vec::with_capacity(aus.iter().map(Vec::len).max().unwrap_or(0) + 64);
        for k in 0..seconds * fps {
            let au = &aus[(k % aus.len() as u64) as usize];
            let info = h264::to_avcc(au, &mut ps, &mut sample).expect("access unit");
            if k == 0 {
                assert!(info.idr, "the clip must start with an IDR");
            }
            if info.params_changed {
                let mut avcc = [0u8; h264::MAX_AVCC];
                let n = ps.avcc(&mut avcc);
                store.set_h264_params(&avcc[..n]);
            }
            store.append_frame(&meta_of(k, Codec::H264, info.idr), &sample).expect("append");
        }
    } else {
        let mut cam = FileCamera::open(Path::new(&args[1]), fps as u32, true, true).expect("clip");
        for k in 0..seconds * fps {
            let (meta, jpeg) = cam.next_frame().expect("frame");
            let m = FrameMeta { lost_before: meta.lost_before, ..meta_of(k, meta.codec, meta.key) };
            store.append_frame(&m, jpeg).expect("append");
        }
    }
    store.close().expect("close");
}

/// Splits an Annex-B stream into access units (Annex-B each): a new one starts at an AUD,
/// SPS, PPS or SEI after a picture's slices, or at a slice whose first_mb_in_slice is 0 (its
/// first ue(v) is the single bit 1).
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut has_slice = false;
    for nal in h264::nal_units(stream) {
        let t = h264::nal_type(nal);
        let vcl = t == h264::NAL_SLICE || t == h264::NAL_IDR;
        let starts = aus.is_empty()
            || (has_slice && matches!(t, h264::NAL_AUD | h264::NAL_SPS | h264::NAL_PPS | h264::NAL_SEI))
            || (has_slice && vcl && nal.get(1).is_some_and(|b| b & 0x80 != 0));
        if starts {
            aus.push(Vec::new());
            has_slice = false;
        }
        has_slice |= vcl;
        let au = aus.last_mut().expect("pushed above");
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
    }
    aus
}
