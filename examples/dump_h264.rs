//! Test helper: writes every intact H.264 frame of a store to `OUT/SEQ.au` as Annex-B (the
//! stored AVCC sample with 4-byte start codes; no SPS/PPS, which live in the segment's avcC),
//! each segment's avcC to `OUT/seg-FIRSTSEQ.avcc`, and prints one line per frame:
//! `SEQ LEN CODEC FLAGS` (FLAGS bit 0: IDR) and one per segment: `segment FIRSTSEQ FRAMES AVCC_LEN`.
//! Exit status 1 when a segment or frame is damaged. Read-only.
//!
//!   cargo run --release --example dump_h264 -- DATA_DIR OUT_DIR
//!
//! Used by scripts/qemu/uvc-h264-test to compare the stored access units with those the USB
//! camera sent, and to check the key-frame flags.
use blackbox::codec::h264;
use blackbox::store::reader::Reader;
use blackbox::store::segment;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out] = args.as_slice() else {
        eprintln!("usage: dump_h264 DATA_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    let run = || -> std::io::Result<u64> {
        std::fs::create_dir_all(&out)?;
        let reader = Reader::open(data.as_ref())?;
        let (mut buf, mut annexb, mut bad) = (Vec::new(), Vec::new(), 0u64);
        for seg in reader.segments() {
            let Ok(sf) = reader.load(seg)? else {
                bad += 1;
                continue;
            };
            let Some(hdr) = segment::read_header(sf.file())? else {
                bad += 1;
                continue;
            };
            let avcc = hdr.params.bytes();
            println!("segment {} {} {}", sf.first_seq, sf.entries.len(), avcc.len());
            std::fs::write(out.join(format!("seg-{:010}.avcc", sf.first_seq)), avcc)?;
            for i in 0..sf.entries.len() {
                let (Some(h), Some(info)) = (sf.header(i)?, sf.read(i, &mut buf)?) else {
                    bad += 1;
                    continue;
                };
                h264::avcc_to_annexb(&buf, None, &mut annexb);
                println!("{} {} {} {}", info.seq, buf.len(), info.codec, h.flags);
                std::fs::write(out.join(format!("{:010}.au", info.seq)), &annexb)?;
            }
        }
        Ok(bad)
    };
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(bad) => {
            eprintln!("dump_h264: {bad} damaged segments or frames");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("dump_h264: {e}");
            ExitCode::from(1)
        }
    }
}
