//! Sound in the export (issue 18), judged by ffprobe and ffmpeg: a 5 s H.264 clip stored as
//! the recorder stores it, and beside it the audio files the microphone's threads write: AAC-LC
//! access units of a 16 kHz recording with a click at each whole second of UTC, stamped as
//! `audio::capture` stamps them (the encoder's delay counted), with 600 ms missing (a device
//! unplugged) between 2.2 and 2.8 s.
//!
//! The export must have an AAC-LC audio track that decodes with `ffmpeg -xerror`, as long as the
//! footage, with every click within one video frame (33 ms) of the frame of its second, before
//! and after the gap; the gap plays as silence. A damaged audio record is never served.

mod support;

use blackbox::audio::aac::{Aac, FRAME, MAX_AU};
use blackbox::audio::file::{Format, KIND_AU, Rec, Writer};
use blackbox::camera::{Codec, FrameMeta};
use blackbox::codec::h264;
use blackbox::store::{Store, StoreOptions};
use std::path::Path;
use std::process::Command;

/// 2026-11-21T12:00:00Z
const T0: i64 = 1_795_262_400_000_000_000;
const SEC: i64 = 1_000_000_000;
const RATE: i64 = 16_000;

fn bb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blackbox"))
}

fn opts() -> StoreOptions {
    StoreOptions {
        segment_length_ns: 2_000_000_000,
        commit_interval_ns: 500_000_000,
        commit_frames: 30,
        storage_cap_bytes: 1 << 40,
        min_free_bytes: 0,
        protected_cap_percent: 50,
        fps: 30,
        expected_bytes_per_s: 200_000,
    }
}

/// 150 frames of testsrc2 at 30 fps, stored with frame k captured at T0 + k/30 s.
fn store_clip(dir: &Path, data: &Path) {
    let out = dir.join("clip.h264");
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-frames:v", "150"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0"])
        .args(["-x264-params", "repeat-headers=1:aud=1", "-f", "h264"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&o.stderr));
    let stream = std::fs::read(&out).unwrap();
    let mut aus: Vec<Vec<u8>> = Vec::new();
    for nal in h264::nal_units(&stream) {
        if h264::nal_type(nal) == h264::NAL_AUD || aus.is_empty() {
            aus.push(Vec::new());
        }
        let au = aus.last_mut().unwrap();
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
    }
    assert_eq!(aus.len(), 150);
    let mut s = Store::open(data, opts()).unwrap();
    let mut ps = h264::ParamSets::default();
    let mut sample = Vec::with_capacity(1 << 20);
    for (k, au) in aus.iter().enumerate() {
        let info = h264::to_avcc(au, &mut ps, &mut sample).unwrap();
        if info.params_changed {
            let mut avcc = [0u8; h264::MAX_AVCC];
            let n = ps.avcc(&mut avcc);
            s.set_h264_params(&avcc[..n]);
        }
        let t = k as i64 * SEC / 30;
        let meta = FrameMeta { mono_ns: (1_000 * SEC + t) as u64, utc_ns: T0 + t, codec: Codec::H264, key: info.idr, lost_before: 0 };
        s.append_frame(&meta, &sample).unwrap();
    }
    s.close().unwrap();
}

/// The microphone's recording: from T0 - 0.7 s to T0 + 5.5 s, silence with a 20 ms 1 kHz burst
/// starting at each whole second of UTC; access units stamped as the capture thread does
/// (unit k decodes to samples k * 1024 - delay); those between 2.2 s and 2.8 s are not written
/// (the device was away). Returns the access units written.
fn store_sound(data: &Path) -> usize {
    let start = T0 - 700_000_000;
    let n = ((6_200_000_000 * RATE) / SEC) as usize;
    let mut pcm = vec![0i16; n.div_ceil(FRAME) * FRAME];
    for k in 0..=5i64 {
        let at = ((T0 + k * SEC - start) * RATE / SEC) as usize;
        for i in 0..(RATE as usize / 50) {
            pcm[at + i] = (12_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / RATE as f64).sin()) as i16;
        }
    }
    let mut enc = Aac::new(RATE as u32, 32_000).unwrap();
    let fmt = Format { rate: RATE as u32, channels: 1, asc: enc.asc.clone(), samples_per_au: FRAME as u32 };
    let mut w = Writer::create(data, fmt, start).unwrap();
    let mut out = [0u8; MAX_AU];
    let (mut k, mut written) = (0i64, 0);
    let frames: Vec<[i16; FRAME]> = pcm.chunks_exact(FRAME).map(|c| c.try_into().unwrap()).chain(std::iter::repeat_n([0i16; FRAME], 3)).collect();
    for f in &frames {
        let len = enc.encode(f, &mut out).unwrap();
        if len == 0 {
            continue;
        }
        let first = k * FRAME as i64 - i64::from(enc.delay);
        k += 1;
        let utc = start + first * SEC / RATE;
        if (T0 + 2_200_000_000..T0 + 2_800_000_000).contains(&utc) {
            continue;
        }
        let rec = Rec { kind: KIND_AU, cause: 0, len: len as u16, utc_ns: utc, mono_ns: 0, samples: FRAME as u32 };
        w.append(&rec, &out[..len]).unwrap();
        written += 1;
    }
    w.sync().unwrap();
    written
}

fn iso(ns: i64) -> String {
    blackbox::clock::Iso(ns).to_string()
}

/// The export's audio decoded to 16 kHz mono samples (`ffmpeg -xerror`).
fn decode_audio(file: &Path) -> Vec<i16> {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "ffmpeg decode: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
}

/// Sample indexes where a burst starts: the first sample above a third of the peak after at
/// least 0.3 s of quiet.
fn onsets(s: &[i16]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut quiet = usize::MAX / 2;
    for (i, &x) in s.iter().enumerate() {
        if x.unsigned_abs() > 4000 {
            if quiet >= RATE as usize * 3 / 10 {
                v.push(i);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    v
}

#[test]
fn the_export_has_the_sound_in_sync_across_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    store_clip(tmp.path(), &data);
    let written = store_sound(&data);
    assert!(written > 80, "{written} access units");

    let out = tmp.path().join("x.mp4");
    let o = bb().arg("export").arg(&data).args(["--from", &iso(T0), "--to", &iso(T0 + 10 * SEC), "-o"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "export: {}", String::from_utf8_lossy(&o.stderr));
    let p = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=index,codec_type,codec_name,profile,sample_rate,channels,duration", "-of", "compact=p=0"])
        .arg(&out)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&p.stdout).into_owned();
    println!("{streams}");
    assert!(streams.contains("codec_type=audio") && streams.contains("codec_name=aac") && streams.contains("profile=LC"), "{streams}");
    assert!(streams.contains("sample_rate=16000") && streams.contains("channels=1"), "{streams}");

    let pcm = decode_audio(&out);
    let secs = pcm.len() as f64 / RATE as f64;
    println!("decoded {} samples ({secs:.3} s)", pcm.len());
    // The footage is 5 s (150 frames); the sound runs to the last unit stored in its span.
    assert!((4.9..=5.2).contains(&secs), "{secs} s of sound for 5 s of footage");
    let found = onsets(&pcm);
    println!("bursts at samples {found:?}");
    // Bursts at 0 (the first frame), 1, 2, 3, 4 s of the video (and 5 s: the sound runs to the
    // end of the last frame, 33 ms past it, and a little more); each within a frame.
    let expected = (0..=5).filter(|&k| (k as f64) < secs - 0.02).count();
    assert!(expected >= 5 && found.len() == expected, "{found:?}");
    for (k, &i) in found.iter().enumerate() {
        let err_ms = (i as f64 / RATE as f64 - k as f64) * 1000.0;
        println!("second {k}: burst at {:.1} ms off", err_ms);
        assert!(err_ms.abs() <= 33.4, "the burst of second {k} is {err_ms:.1} ms off its frame");
    }
    // The gap (2.2 .. 2.8 s) plays as silence.
    let gap = &pcm[(2.3 * RATE as f64) as usize..(2.7 * RATE as f64) as usize];
    assert!(gap.iter().all(|x| x.unsigned_abs() < 50), "the gap is not silent");

    // A damaged record is never served: flip a byte in the middle of the audio file; the
    // export still decodes, and that unit (and the rest of its file) is left out.
    let f = std::fs::read_dir(data.join("audio")).unwrap().next().unwrap().unwrap().path();
    let mut b = std::fs::read(&f).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&f, &b).unwrap();
    let out2 = tmp.path().join("y.mp4");
    let o = bb().arg("export").arg(&data).args(["--from", &iso(T0), "--to", &iso(T0 + 10 * SEC), "-o"]).arg(&out2).output().unwrap();
    assert!(o.status.success(), "export: {}", String::from_utf8_lossy(&o.stderr));
    let pcm2 = decode_audio(&out2);
    let found2 = onsets(&pcm2);
    assert!(found2.len() < expected && !found2.is_empty(), "{found2:?}");
    for (k, &i) in found2.iter().enumerate() {
        assert!((i as f64 / RATE as f64 - k as f64).abs() <= 0.0334, "{found2:?}");
    }
}
