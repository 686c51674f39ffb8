//! Benchmark helper (scripts/bench export): fills a data directory with SECONDS of footage
//! from a concatenated-JPEG clip (replayed in a loop), timestamped at exactly FPS from
//! 2026-11-21T12:00:00Z, through the real store (60 s segments, default commits).
//!
//!     cargo run --release --example make_store -- CLIP DATA_DIR SECONDS [FPS]

use blackbox::camera::file::FileCamera;
use blackbox::camera::{Camera, FrameMeta};
use blackbox::config::Config;
use blackbox::store::Store;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: make_store CLIP DATA_DIR SECONDS [FPS]");
        std::process::exit(2);
    }
    let seconds: u64 = args[3].parse().expect("SECONDS");
    let fps: u64 = args.get(4).map_or(30, |f| f.parse().expect("FPS"));
    let mut cam = FileCamera::open(Path::new(&args[1]), fps as u32, true, true).expect("clip");
    let config = Config::default();
    let mut opts = blackbox::cli::store_options(&config);
    opts.fps = fps as u32;
    opts.storage_cap_bytes = u64::MAX / 4;
    opts.min_free_bytes = 0;
    let mut store = Store::open(Path::new(&args[2]), opts).expect("store");
    let t0: i64 = 1_795_262_400_000_000_000;
    for k in 0..seconds * fps {
        let (meta, jpeg) = cam.next_frame().expect("frame");
        let t = (k as u128 * 1_000_000_000 / fps as u128) as u64;
        let m = FrameMeta { mono_ns: 1_000_000_000_000 + t, utc_ns: t0 + t as i64, ..meta };
        store.append_frame(&m, jpeg).expect("append");
    }
    store.close().expect("close");
}
