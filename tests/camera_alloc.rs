//! `next_frame` must not allocate: a counting global allocator checks both cameras.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use blackbox::camera::Camera;
use blackbox::camera::file::FileCamera;
use blackbox::camera::synthetic::Synthetic;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: forwards to the system allocator; only counts calls made while counting is on.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations on this thread during `f`.
fn allocs_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

fn drive(cam: &mut dyn Camera, n: usize) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        let (meta, f) = cam.next_frame().expect("frame");
        bytes += f.len() + (meta.mono_ns & 1) as usize;
    }
    bytes
}

#[test]
fn counter_works() {
    assert!(allocs_during(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}

#[test]
fn synthetic_next_frame_does_not_allocate() {
    let mut cam = Synthetic::new(64, 48, 1000, 60).unwrap();
    drive(&mut cam, 20); // warm-up
    let mut bytes = 0;
    let n = allocs_during(|| bytes = drive(&mut cam, 1200));
    assert!(bytes > 0);
    assert_eq!(
        n, 0,
        "synthetic next_frame allocated {n} times over 1200 frames"
    );
}

#[test]
fn file_next_frame_does_not_allocate() {
    // Frames with garbage between them, a truncated tail, looping: every code path of
    // next_frame (including the wrap and page release) runs while counting.
    let cam = Synthetic::new(96, 64, 30, 70).unwrap();
    let mut data = Vec::new();
    for _ in 0..80 {
        for i in 0..cam.loop_frames() {
            data.extend_from_slice(cam.loop_frame(i).unwrap());
            data.extend_from_slice(b"\xFF\xD8junk");
        }
    }
    let len = data.len();
    data.extend_from_slice(&cam.loop_frame(0).unwrap()[..100]);
    assert!(
        len > 2 * blackbox::camera::file::BUFFER_BYTES,
        "{len} bytes: too small to hit page release"
    );
    let path =
        std::env::temp_dir().join(format!("blackbox-test-{}-alloc.mjpeg", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let mut fc = FileCamera::open(&path, 30, true, true).unwrap();
    let frames = fc.frame_count() as usize;
    drive(&mut fc, 20);
    let mut bytes = 0;
    let n = allocs_during(|| bytes = drive(&mut fc, 2 * frames + 7));
    let _ = std::fs::remove_file(&path);
    assert!(bytes >= len, "{bytes} bytes delivered");
    assert_eq!(
        n,
        0,
        "file next_frame allocated {n} times over {} frames",
        2 * frames + 7
    );
}

#[test]
fn timestamp_overlay_does_not_allocate() {
    use blackbox::camera::overlay::{self, Raw};
    let (w, h) = (1280usize, 720usize);
    let mut yuyv = vec![100u8; 2 * w * h];
    let mut nv12 = vec![100u8; w * h * 3 / 2];
    let mut drawn = 0;
    let n = allocs_during(|| {
        for i in 0..50i64 {
            let mut text = [0u8; overlay::TEXT_MAX];
            let len = overlay::timestamp_text(1_795_307_415_000_000_000 + i * 1_000_000_000, &mut text);
            drawn += usize::from(overlay::draw(&mut yuyv, Raw::Yuyv, 2 * w, w, h, &text[..len]));
            drawn += usize::from(overlay::draw(&mut nv12, Raw::Nv12, w, w, h, &text[..len]));
        }
    });
    assert_eq!(drawn, 100);
    assert!(yuyv.contains(&235) && nv12.contains(&235), "no text drawn");
    assert_eq!(n, 0, "the overlay allocated {n} times over 100 frames");
}

#[test]
fn h264_file_next_frame_does_not_allocate() {
    // An Annex-B stream made by blackbox's own encoder (every picture an IDR, so it is large
    // enough to make the read buffer refill many times), garbage between some access units,
    // looping: every code path of next_frame runs while counting.
    use blackbox::camera::h264file::H264FileCamera;
    use blackbox::codec::encoder::{H264Settings, SoftH264, VideoEncoder};
    use blackbox::codec::raw::RawFrame;
    let (w, h) = (320usize, 240usize);
    let settings = H264Settings { width: w as u32, height: h as u32, fps: 30, bitrate_kbps: 20_000, keyframe_interval: 1 };
    let mut enc = SoftH264::new(settings).unwrap();
    let mut data = Vec::new();
    let (mut y, u, v) = (vec![0u8; w * h], vec![90u8; w * h / 4], vec![160u8; w * h / 4]);
    let mut k = 0usize;
    while data.len() < 2 * blackbox::camera::h264file::BUFFER_BYTES + 100_000 {
        for (i, p) in y.iter_mut().enumerate() {
            *p = ((i * 7 + k * 13) ^ (i / w * 3)) as u8;
        }
        let e = enc.encode(RawFrame::Planar { y: &y, u: &u, v: &v, cw: w / 2, ch: h / 2 }).unwrap();
        data.extend_from_slice(e.data);
        if k % 7 == 3 {
            data.extend_from_slice(b"junk\x00\x00");
        }
        k += 1;
    }
    let path = std::env::temp_dir().join(format!("blackbox-test-{}-alloc.h264", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let mut fc = H264FileCamera::open(&path, 30, true, true).unwrap();
    let frames = fc.frame_count() as usize;
    assert_eq!(frames, k, "every encoded picture is one access unit");
    drive(&mut fc, 20);
    let mut bytes = 0;
    let n = allocs_during(|| bytes = drive(&mut fc, 2 * frames + 7));
    let _ = std::fs::remove_file(&path);
    assert!(bytes >= data.len(), "{bytes} bytes delivered");
    assert_eq!(n, 0, "H.264 file next_frame allocated {n} times over {} frames", 2 * frames + 7);
}
