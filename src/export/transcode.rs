//! Motion JPEG footage as H.264, for sharing (`blackbox export --h264`): every JPEG of the
//! range is decoded and encoded by the software H.264 encoder into a temporary store, whose
//! export is then the usual moov-first, Range-seekable MP4 (docs/EXPORT.md). The temporary
//! files are unlinked as soon as the export is planned (the export keeps them open), so
//! nothing is left behind, whatever happens next.
//!
//! Footage that is H.264 already is exported as it is.

use super::plan::{self, Plan};
use super::Export;
use crate::camera::{Codec, FrameMeta};
use crate::codec::encoder::{H264Settings, SoftH264, VideoEncoder};
use crate::codec::{h264, jpeg_yuv};
use crate::store::reader::Reader;
use crate::store::{Store, StoreOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The H.264 export of `from..to` (UTC ns) of the store in `data_dir`, transcoding Motion JPEG
/// footage at `bitrate_kbps` with a key frame every `keyframe_interval_s`. `progress` is
/// called with (frames done, frames in all).
pub fn to_h264(
    data_dir: &Path,
    from: i64,
    to: i64,
    bitrate_kbps: u32,
    keyframe_interval_s: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Arc<Export>, String> {
    let reader = Reader::open(data_dir).map_err(|e| format!("reading the store: {e}"))?;
    let p = plan::plan(&reader, from, to).map_err(|e| e.to_string())?;
    if p.codec == Codec::H264 {
        return Ok(Arc::new(super::with_track(p, data_dir)));
    }
    let tmp = TempDir::new()?;
    transcode(&p, &tmp.0, bitrate_kbps, keyframe_interval_s, progress)?;
    // The transcoded store, with the original's GPS track in the subtitles.
    let reader = Reader::open(&tmp.0).map_err(|e| format!("reading the transcoded store: {e}"))?;
    let p = plan::plan(&reader, i64::MIN, i64::MAX).map_err(|e| e.to_string())?;
    Ok(Arc::new(super::with_track(p, data_dir)))
}

fn transcode(p: &Plan, dir: &Path, bitrate_kbps: u32, keyframe_interval_s: u32, progress: &mut dyn FnMut(u64, u64)) -> Result<(), String> {
    let (w, h) = (p.width as usize & !1, p.height as usize & !1);
    if w == 0 || h == 0 {
        return Err("the footage's picture size is unknown".into());
    }
    let nominal = plan::durations_ns(&p.frames).last().copied().unwrap_or(33_333_333).max(1);
    let fps = (1_000_000_000 / nominal).clamp(1, 120) as u32;
    let settings = H264Settings {
        width: w as u32,
        height: h as u32,
        fps,
        bitrate_kbps,
        keyframe_interval: fps.saturating_mul(keyframe_interval_s.max(1)),
    };
    let mut enc = SoftH264::new(settings).map_err(|e| e.to_string())?;
    let mut dec = turbojpeg::Decompressor::new().map_err(|e| e.to_string())?;
    let mut planes = vec![0u8; jpeg_yuv::planes_len(p.width as usize, p.height as usize)];
    let opts = StoreOptions {
        segment_length_ns: 3600 * 1_000_000_000,
        commit_interval_ns: 60 * 1_000_000_000,
        commit_frames: 100_000,
        storage_cap_bytes: u64::MAX / 4,
        min_free_bytes: 0,
        protected_cap_percent: 100,
        fps,
        expected_bytes_per_s: u64::from(bitrate_kbps) * 1000 / 8,
    };
    let mut store = Store::open(dir, opts).map_err(|e| format!("temporary store in {}: {e}", dir.display()))?;
    let (mut ps, mut sample, mut buf) = (h264::ParamSets::default(), Vec::with_capacity(w * h), Vec::new());
    let total = p.frames.len() as u64;
    let mut skipped = 0u64;
    let mut prev_seq = None;
    for (i, f) in p.frames.iter().enumerate() {
        let src = &p.segments[f.seg as usize];
        let rec = crate::store::segment::read_record(src.frames.file(), src.frames.uid(), f.offset, src.frames.limit(), &mut buf)
            .map_err(|e| format!("reading {}: {e}", src.name))?;
        if rec.is_none_or(|r| r.seq != f.seq) {
            skipped += 1;
            enc.request_key_frame();
            continue;
        }
        // After a hole in the footage the next picture starts a new GOP, as in a recording.
        if prev_seq.is_some_and(|s: u64| s + 1 != f.seq) {
            enc.request_key_frame();
        }
        prev_seq = Some(f.seq);
        let frame = match jpeg_yuv::decode(&mut dec, &mut planes, &buf, w, h) {
            Ok(fr) => fr,
            Err(e) => {
                log::warn!("export --h264: frame {} can't be decoded ({e}); left out", f.seq);
                skipped += 1;
                enc.request_key_frame();
                continue;
            }
        };
        let e = enc.encode(frame).map_err(|e| e.to_string())?;
        let info = h264::to_avcc(e.data, &mut ps, &mut sample).map_err(|e| e.to_string())?;
        if info.params_changed {
            let mut avcc = [0u8; h264::MAX_AVCC];
            let n = ps.avcc(&mut avcc);
            store.set_h264_params(&avcc[..n]);
        }
        let meta = FrameMeta { mono_ns: f.mono_ns, utc_ns: f.utc_ns, codec: Codec::H264, key: info.idr, lost_before: 0 };
        store.append_frame(&meta, &sample).map_err(|e| format!("temporary store: {e}"))?;
        progress(i as u64 + 1, total);
    }
    if skipped > 0 {
        log::warn!("export --h264: {skipped} damaged frames left out");
    }
    store.close().map_err(|e| format!("temporary store: {e}"))?;
    Ok(())
}

/// A private directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let base = std::env::temp_dir();
        for k in 0..100u32 {
            let nanos = crate::clock::now_mono_ns();
            let d = base.join(format!("blackbox-h264-{}-{nanos}-{k}", std::process::id()));
            match std::fs::create_dir(&d) {
                Ok(()) => return Ok(TempDir(d)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create a temporary directory in {}: {e}", base.display())),
            }
        }
        Err("cannot create a temporary directory".into())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
