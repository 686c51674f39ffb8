//! Test helper: writes every intact frame payload of a store to `OUT/SEQ.jpg` (SEQ = the
//! frame's sequence number, 10 digits), exactly the bytes the recorder stored, and prints
//! one line per frame: `SEQ LEN CODEC MONO_NS UTC_NS` (MONO_NS: the capture time, the V4L2
//! driver's timestamp for a V4L2 camera). Damaged frames are skipped by the reader and counted;
//! the exit status is 1 when there were any. Read-only (the store is recovered in memory).
//!
//!   cargo run --release --example dump_frames -- DATA_DIR OUT_DIR
//!
//! Used by scripts/qemu/uvc-test to compare the stored frames byte for byte with the JPEGs
//! the USB camera sent (cutting SOI..EOI out of the segment files could not tell a frame
//! with trailing bytes from one without).
use blackbox::store::reader::Reader;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out] = args.as_slice() else {
        eprintln!("usage: dump_frames DATA_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    let run = || -> std::io::Result<u64> {
        std::fs::create_dir_all(&out)?;
        let reader = Reader::open(data.as_ref())?;
        let mut buf = Vec::new();
        let mut err = None;
        let bad = reader.for_each_in_range(i64::MIN, i64::MAX, &mut buf, |info, payload| {
            println!("{} {} {} {} {}", info.seq, payload.len(), info.codec, info.mono_ns, info.utc_ns);
            match std::fs::write(out.join(format!("{:010}.jpg", info.seq)), payload) {
                Ok(()) => true,
                Err(e) => {
                    err = Some(e);
                    false
                }
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(bad),
        }
    };
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(bad) => {
            eprintln!("dump_frames: {bad} damaged frames skipped");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("dump_frames: {e}");
            ExitCode::from(1)
        }
    }
}
