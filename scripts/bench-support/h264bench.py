"""H.264 benchmarks (issue 13) for scripts/bench: sections `h264` and `export264`.

Used by scripts/bench (section_h264, section_export264 there), which passes itself as `b` for
its helpers (run_timed, sh, log, BENCH, evict, ...). Stdlib only.

h264: on the same 1280x720 30 fps raw clips (ffmpeg lavfi, yuv420p, cached in target/bench):
  - bytes per minute and quality (ffmpeg psnr and ssim filters against the raw source) of
    blackbox's H.264 (OpenH264 at the default bitrate, straight from the raw frames as a raw
    camera records, and through a JPEG as JPEG sources do), blackbox's MJPEG q80, and ffmpeg libx264 at the same bitrate;
  - CPU per frame (user+sys of the process, many frames minus few frames) of the same encoders,
    libx264 -preset ultrafast and veryfast with -threads 1 (one core each, as OpenH264 runs);
  - a real `blackbox run --source synthetic` at defaults (H.264) side by side with the same
    run at video_codec=mjpeg: bytes stored per minute, recorder CPU per frame, and its export
    (codec, ffmpeg -xerror).
export264: an hour of H.264 footage (a 60 s OpenH264 clip stored in a loop, access unit by
  access unit as the recorder stores them): `blackbox export -o -` and GET /api/export.mp4
  against cat of the segment files: throughput, time to first byte, warm and cold cache.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

W, H, FPS = 1280, 720, 30
SIZE = f"{W}x{H}"
FRAME_I420 = W * H * 3 // 2

# name -> (lavfi source, what it is)
CLIPS = {
    "testsrc2": ("testsrc2=size=1280x720:rate=30",
                 "ffmpeg testsrc2 (flat colour fields, a moving box, a counter: easy to compress)"),
    "mandelbrot+grain": ("mandelbrot=size=1280x720:rate=30,noise=alls=6:allf=t+u",
                         "ffmpeg mandelbrot zoom with temporal grain (noise alls=6: every pixel changes "
                         "each frame, fine detail: hard to compress)"),
}


def make_yuv(b, kind, frames):
    """The raw clip as yuv420p (I420) and as NV12 (the same samples, chroma interleaved)."""
    src, _ = CLIPS[kind]
    base = b.BENCH / f"yuv-{kind.replace('+', '-')}-{SIZE}-{frames}"
    i420, nv12 = base.with_suffix(".i420"), base.with_suffix(".nv12")
    if not i420.exists():
        b.log(f"generating {i420.name} ({frames} frames {SIZE} yuv420p from lavfi {src})")
        tmp = i420.with_suffix(".tmp")
        b.sh(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", src, "-frames:v", str(frames),
              "-pix_fmt", "yuv420p", "-f", "rawvideo", str(tmp)])
        tmp.rename(i420)
    if not nv12.exists():
        tmp = nv12.with_suffix(".tmp")
        b.sh(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", SIZE,
              "-i", str(i420), "-pix_fmt", "nv12", "-f", "rawvideo", str(tmp)])
        tmp.rename(nv12)
    return i420, nv12


def x264(preset, kbps, i420, k, out=None):
    """ffmpeg libx264 on the raw I420 frames: one thread, no B-frames, a key frame every 30."""
    return ["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", SIZE,
            "-framerate", str(FPS), "-stream_loop", "-1", "-i", str(i420), "-frames:v", str(k),
            "-c:v", "libx264", "-preset", preset, "-threads", "1", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k",
            "-bufsize", f"{2 * kbps}k", "-g", "30", "-bf", "0",
            *(["-f", "null", "-"] if out is None else ["-y", "-f", "h264", str(out)])]


def encoders(b, blackbox, i420, nv12, kbps, quality):
    """name -> (cmd(k, out), output format for ffmpeg, pixel format it decodes to)."""
    bb = str(blackbox)

    def bbenc(raw, *extra):
        return lambda k, out=None: [bb, "bench-encode", str(raw), SIZE, str(k), *extra,
                                    *([] if out is None else ["-o", str(out)])]
    return {
        f"blackbox H.264 {kbps} kbit/s (OpenH264, raw I420 in: a raw camera's path)":
            (bbenc(i420, "--i420", "--h264", "--bitrate", str(kbps)), "h264", "yuv420p"),
        f"blackbox H.264 {kbps} kbit/s via JPEG q{quality} (a JPEG source's path)":
            (bbenc(nv12, "--nv12", "--h264", "--via-jpeg", "--quality", str(quality), "--bitrate", str(kbps)),
             "h264", "yuv420p"),
        f"blackbox MJPEG q{quality} (turbojpeg, NV12 in)":
            (bbenc(nv12, "--nv12", "--quality", str(quality)), "mjpeg", "yuvj420p"),
        f"ffmpeg libx264 veryfast {kbps} kbit/s -threads 1":
            (lambda k, out=None: x264("veryfast", kbps, i420, k, out), "h264", "yuv420p"),
        f"ffmpeg libx264 ultrafast {kbps} kbit/s -threads 1":
            (lambda k, out=None: x264("ultrafast", kbps, i420, k, out), "h264", "yuv420p"),
    }


def quality_of(b, out, fmt, pix, ref, frames):
    """PSNR and SSIM of `out` (decoded with -xerror, its samples taken as they are: no range or
    colour conversion, JPEG's full-range flag ignored like the camera's limited-range samples it
    carries) against the raw I420 reference."""
    dec = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-f", fmt, "-framerate", str(FPS),
                            "-i", str(out), "-f", "rawvideo", "-pix_fmt", pix, "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cmp = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", SIZE,
                          "-framerate", str(FPS), "-i", "-",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", SIZE, "-framerate", str(FPS), "-i", str(ref),
                          "-lavfi", "[0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim", "-f", "null", "-"],
                         stdin=dec.stdout, capture_output=True, text=True)
    dec.stdout.close()
    derr = dec.stderr.read().decode(errors="replace")
    if dec.wait() != 0 or derr.strip():
        raise b.RunFailed(f"decoding {out} failed: {derr[-1500:]}")
    if cmp.returncode != 0:
        raise b.RunFailed(f"psnr/ssim of {out} failed: {cmp.stderr[-1500:]}")
    p = re.search(r"PSNR y:([\d.inf]+) u:([\d.inf]+) v:([\d.inf]+) average:([\d.inf]+)", cmp.stderr)
    s = re.search(r"SSIM Y:([\d.]+) .*All:([\d.]+)", cmp.stderr)
    n = re.findall(r"frame=\s*(\d+)", cmp.stderr)
    if not p or not s:
        raise b.RunFailed(f"no PSNR/SSIM for {out}: {cmp.stderr[-1500:]}")
    decoded = int(n[-1]) if n else None
    if decoded is not None and decoded != frames:
        raise b.RunFailed(f"{out}: {decoded} frames compared, {frames} expected")
    return {"psnr_y": float(p.group(1)), "psnr_avg": float(p.group(4)), "ssim_y": float(s.group(1)),
            "ssim_all": float(s.group(2)), "frames_compared": decoded}


def cpu_per_frame(b, cmds, reps, many, few, tag):
    """name -> median over reps of (cpu(many) - cpu(few)) / (many - few), runs interleaved."""
    cpu = {name: {"many": [], "few": []} for name in cmds}
    for rep in range(reps):
        for name, cmd in cmds.items():
            b.log(f"{tag} rep {rep + 1}/{reps}: {name}")
            for k, key in ((many, "many"), (few, "few")):
                errf = b.BENCH / "h264.stderr"
                r = b.run_timed(cmd(k), errf)
                errf.unlink(missing_ok=True)
                cpu[name][key].append(r["utime_s"] + r["stime_s"])
    per = {name: statistics.median((a - c) / (many - few) for a, c in zip(v["many"], v["few"]))
           for name, v in cpu.items()}
    return per, cpu


def section_h264(b, args, blackbox):
    b.check_tools("ffmpeg", "ffprobe", "gcc")
    kbps, quality, frames = 4000, 80, 300
    many, few = 300, 30
    out = {"kbps": kbps, "quality": quality, "frames": frames, "frames_many": many, "frames_few": few,
           "reps": args.reps, "clips": {}}
    tables = []
    for kind, (src, what) in CLIPS.items():
        i420, nv12 = make_yuv(b, kind, frames)
        encs = encoders(b, blackbox, i420, nv12, kbps, quality)
        rows = {}
        for name, (cmd, fmt, pix) in encs.items():
            b.log(f"{kind}: encoding {frames} frames: {name}")
            o = b.BENCH / f"h264-out.{fmt}"
            b.sh(cmd(frames, o))
            size = o.stat().st_size
            q = quality_of(b, o, fmt, pix, i420, frames)
            o.unlink()
            rows[name] = {"bytes": size, "mb_per_min": size / frames * FPS * 60 / 1e6,
                          "kbit_s": size * 8 / (frames / FPS) / 1000, **q}
        per, raw_cpu = cpu_per_frame(b, {n: c for n, (c, _, _) in encs.items()}, args.reps, many, few, kind)
        for name, v in per.items():
            rows[name]["cpu_ms_per_frame"] = v * 1000
        out["clips"][kind] = {"source": src, "what": what, "raw_i420": str(i420), "rows": rows, "cpu_s": raw_cpu}
        tables.append((kind, what, rows))

    names = list(tables[0][2])
    veryfast = next(n for n in names if "veryfast" in n)
    ultrafast = next(n for n in names if "ultrafast" in n)
    for kind, what, rows in tables:
        print()
        print(f"## h264: {frames} frames of {SIZE} {FPS} fps, {kind}: {what}")
        print()
        print("| encoder | MB/min | kbit/s | PSNR-Y dB | PSNR avg dB | SSIM-Y | SSIM all | CPU ms/frame | vs x264 veryfast | vs x264 ultrafast |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for name, r in rows.items():
            print(f"| {name} | {r['mb_per_min']:.1f} | {r['kbit_s']:.0f} | {r['psnr_y']:.2f} | {r['psnr_avg']:.2f} | "
                  f"{r['ssim_y']:.4f} | {r['ssim_all']:.4f} | {r['cpu_ms_per_frame']:.2f} | "
                  f"{b.fmt_ratio(b.ratio(r['cpu_ms_per_frame'], rows[veryfast]['cpu_ms_per_frame']))} | "
                  f"{b.fmt_ratio(b.ratio(r['cpu_ms_per_frame'], rows[ultrafast]['cpu_ms_per_frame']))} |")
    print()
    print(f"CPU: user+sys of the process for {many} minus {few} frames, per frame, median of {args.reps} "
          "interleaved runs; every encoder on one thread. Quality: ffmpeg psnr/ssim filters against the raw "
          "yuv420p source, every frame.")

    out["synthetic_run"] = synthetic_runs(b, args, blackbox)
    return out


def synthetic_runs(b, args, blackbox):
    """`blackbox run --source synthetic` at defaults (H.264) and at video_codec=mjpeg, side by side."""
    secs = args.seconds
    rusage = b.support_binary("rusage_run")
    runs = {}
    configs = {"blackbox run (defaults: H.264 4000 kbit/s)": {},
               "blackbox run, video_codec=mjpeg (peer)": {"video_codec": "mjpeg"}}
    for name, cfg in configs.items():
        d = Path(tempfile.mkdtemp(prefix="h264-run-", dir=b.BENCH))
        (d / "config.json").write_text(json.dumps(cfg) + "\n")
        res = d / "rusage.json"
        p = subprocess.Popen([str(rusage), str(res), str(blackbox), "run", "--source", "synthetic",
                              "--listen", "127.0.0.1:0", "--data", str(d / "data"), "--config", str(d / "config.json")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(d / "stderr.log", "wb"))
        runs[name] = (p, d, res)
    b.log(f"recording the built-in camera for {secs} s, H.264 and MJPEG side by side")
    time.sleep(secs)
    for name, (p, d, res) in runs.items():
        for k in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split():
            os.kill(int(k), signal.SIGTERM)
    rows = {}
    for name, (p, d, res) in runs.items():
        p.wait(timeout=120)
        ru = json.loads(res.read_text())
        summary = b.parse_summary((d / "stderr.log").read_text(errors="replace")) or {}
        frames = b.read_store_frames(d / "data")
        segs = list((d / "data" / "segments").glob("*.seg"))
        used = sum(int(s.name.rsplit("_", 1)[1].split(".")[0]) for s in segs)
        span = (frames[-1][1] - frames[0][1]) / 1e9 + 1 / FPS
        footage = sum(ln for _, _, ln in frames)
        mp4 = d / "export.mp4"
        b.sh([str(blackbox), "export", str(d / "data"), "-o", str(mp4)])
        probe = b.sh(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                      "stream=codec_name,codec_tag_string,profile,width,height", "-of", "csv=p=0", str(mp4)]).stdout.strip()
        dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(mp4), "-f", "null", "-"],
                             capture_output=True, text=True)
        rows[name] = {
            "frames": len(frames), "seconds": span, "segments": len(segs),
            "footage_bytes": footage, "store_used_bytes": used,
            "mb_per_min_stored": used / span * 60 / 1e6, "mb_per_min_footage": footage / span * 60 / 1e6,
            "export_bytes": mp4.stat().st_size, "mb_per_min_export": mp4.stat().st_size / span * 60 / 1e6,
            "export_stream": probe, "export_decodes": dec.returncode == 0 and not dec.stderr.strip(),
            "cpu_ms_per_frame": (ru["utime_s"] + ru["stime_s"]) * 1000 / len(frames),
            "peak_rss_mib": ru["maxrss_kib"] / 1024,
            "dropped": summary.get("dropped"),
        }
        shutil.rmtree(d, ignore_errors=True)
    peer = rows["blackbox run, video_codec=mjpeg (peer)"]
    print()
    print(f"## h264: `blackbox run --source synthetic` at defaults (1280x720 30 fps), {secs} s, "
          "side by side with the same run at video_codec=mjpeg")
    print()
    print("| run | frames | MB/min stored | ratio | MB/min of export | export stream | ffmpeg -xerror | "
          "CPU ms/frame (start-up incl.) | peak RSS MiB | dropped |")
    print("|---|--:|--:|--:|--:|---|---|--:|--:|--:|")
    for name, r in rows.items():
        print(f"| {name} | {r['frames']} | {r['mb_per_min_stored']:.1f} | "
              f"{b.fmt_ratio(b.ratio(r['mb_per_min_stored'], peer['mb_per_min_stored']))} | "
              f"{r['mb_per_min_export']:.1f} | {r['export_stream']} | {'ok' if r['export_decodes'] else 'ERRORS'} | "
              f"{r['cpu_ms_per_frame']:.2f} | {r['peak_rss_mib']:.1f} | {r['dropped']} |")
    h = rows["blackbox run (defaults: H.264 4000 kbit/s)"]
    ok = h["mb_per_min_stored"] <= 35 and h["mb_per_min_export"] <= 35
    print()
    print(f"at most 35 MB per minute at 720p30 (stored and exported): {'PASS' if ok else 'FAIL'} "
          f"({h['mb_per_min_stored']:.1f} stored, {h['mb_per_min_export']:.1f} exported)")
    print("MB/min stored: used bytes of the segment files (headers, index, commits included) per minute of "
          "footage. The built-in pattern is easy to compress: see the clips above for harder pictures.")
    return {"seconds": secs, "rows": rows, "target_35mb_min": "PASS" if ok else "FAIL"}


# --------------------------------------------------------------------------- export264

def http_download(port, path, secret):
    """(seconds to the first body byte, seconds to the last, body bytes) of GET path."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as c:
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
               "Connection: close\r\n\r\n").encode()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        t0 = time.monotonic()
        c.sendall(req)
        head = b""
        first = None
        body = 0
        while True:
            n = c.recv_into(view)
            if n == 0:
                break
            if first is None:
                head += bytes(view[:n])
                if b"\r\n\r\n" in head:
                    status = head.split(b" ", 2)[1]
                    if status != b"200":
                        raise RuntimeError(f"GET {path}: HTTP {status.decode()}: {head[:300]!r}")
                    body = len(head) - head.index(b"\r\n\r\n") - 4
                    if body:
                        first = time.monotonic() - t0
            else:
                body += n
            if first is None and body:
                first = time.monotonic() - t0
        return first, time.monotonic() - t0, body


def serve(b, blackbox, segs, d):
    """A `blackbox run` whose data directory links the bench store's segments (see
    http_export_first_bytes in scripts/bench); returns (process, port, secret)."""
    data = Path(d) / "data"
    (data / "segments").mkdir(parents=True)
    for p in segs:
        os.link(p, data / "segments" / Path(p).name)
    cfg = Path(d) / "config.json"
    cfg.write_text('{"video_res_width": 160, "video_res_height": 120, "video_fps": 5, '
                   '"storage_cap_gb": 65536, "min_free_mb": 0}')
    errlog = Path(d) / "run.stderr"
    p = subprocess.Popen([str(blackbox), "run", "--source", "synthetic", "--data", str(data), "--config", str(cfg),
                          "--listen", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(errlog, "w"))
    deadline = time.monotonic() + 30
    port = None
    while port is None or not (data / "secret").exists() or not b._port_open(port):
        m = re.search(r"web: serving on 127\.0\.0\.1:(\d+)", errlog.read_text())
        port = int(m.group(1)) if m else None
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            raise b.RunFailed(f"blackbox run did not come up: {errlog.read_text()[-2000:]}")
        time.sleep(0.05)
    return p, port, (data / "secret").read_text().strip()


def section_export264(b, args, blackbox):
    b.check_tools("ffmpeg", "ffprobe", "gcc", "cat")
    seconds = args.export_seconds
    kbps = 4000
    make_store = blackbox.parent / "examples" / "make_store"
    if not args.no_build and not args.blackbox:
        subprocess.run([b.find_cargo(), "build", "--release", "--example", "make_store"], cwd=b.ROOT, check=True)
    if not os.access(make_store, os.X_OK):
        raise b.RunFailed(f"{make_store}: missing (cargo build --release --example make_store)")
    i420, _ = make_yuv(b, "testsrc2", 300)
    clip = b.BENCH / f"clip-60s-{kbps}k.h264"
    if not clip.exists():
        b.log(f"encoding {clip.name}: 60 s of the testsrc2 frames (looped) with blackbox's OpenH264 at {kbps} kbit/s")
        tmp = b.BENCH / "clip-tmp.h264"
        b.sh([str(blackbox), "bench-encode", str(i420), SIZE, str(60 * FPS), "--i420", "--h264",
              "--bitrate", str(kbps), "-o", str(tmp)])
        tmp.rename(clip)
    store = b.BENCH / f"export264-store-{seconds}s"
    done = store / "complete"
    marker = f"h264 {clip.stat().st_size}\n"
    if not done.exists() or done.read_text() != marker:
        shutil.rmtree(store, ignore_errors=True)
        b.log(f"making {store.name}: {seconds} s of {SIZE} {FPS} fps H.264 ({clip.name} looped)")
        b.sh([str(make_store), str(clip), str(store), str(seconds), str(FPS)])
        done.write_text(marker)
    segs = sorted(str(p) for p in (store / "segments").iterdir())
    store_bytes = sum(int(Path(p).name.rsplit("_", 1)[1].split(".")[0]) for p in segs)
    file_bytes = sum(os.path.getsize(p) for p in segs)

    def warm():
        subprocess.run(["cat", *segs], stdout=subprocess.DEVNULL, check=True)

    hour = "hour" if seconds == 3600 else f"{seconds} s"
    to = f"2026-11-21T{12 + seconds // 3600:02}:{seconds % 3600 // 60:02}:{seconds % 60:02}Z"
    spans = {hour: ("2026-11-21T12:00:00Z", to), "1 minute": ("2026-11-21T12:00:00Z", "2026-11-21T12:01:00Z")}
    # Is the export right? codec and a clean decode of one minute (the whole hour takes too long here).
    check = b.BENCH / "export264-check.mp4"
    b.sh([str(blackbox), "export", str(store), "--to", spans["1 minute"][1], "-o", str(check)])
    probe = b.sh(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                  "stream=codec_name,codec_tag_string,profile,nb_frames", "-of", "csv=p=0", str(check)]).stdout.strip()
    dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(check), "-f", "null", "-"],
                         capture_output=True, text=True)
    check.unlink()
    if dec.returncode != 0 or dec.stderr.strip():
        raise b.RunFailed(f"the export of the H.264 store does not decode: {dec.stderr[-1500:]}")

    contenders = {
        "cat segment files > /dev/null": ["cat", *segs],
        "blackbox export -o - > /dev/null": [str(blackbox), "export", str(store), "-o", "-"],
    }
    modes = ["warm", "cold"]
    results = {m: {n: [] for n in [*contenders, "GET /api/export.mp4"]} for m in modes}
    ttfb = {}
    with tempfile.TemporaryDirectory(prefix="bb-export264-http-", dir=b.BENCH) as d:
        p, port, secret = serve(b, blackbox, segs, d)
        try:
            http_download(port, f"/api/export.mp4?from={spans['1 minute'][0]}&to={spans['1 minute'][1]}", secret)
            for rep in range(args.reps):
                for mode in modes:
                    for name, cmd in contenders.items():
                        b.log(f"rep {rep + 1}/{args.reps} {mode}: {name}")
                        b.evict(segs) if mode == "cold" else warm()
                        errf = b.BENCH / "export264.stderr"
                        try:
                            results[mode][name].append(b.run_timed(cmd, errf))
                        finally:
                            errf.unlink(missing_ok=True)
                    b.log(f"rep {rep + 1}/{args.reps} {mode}: GET /api/export.mp4 (the {hour})")
                    b.evict(segs) if mode == "cold" else warm()
                    first, wall, body = http_download(port, f"/api/export.mp4?from={spans[hour][0]}&to={spans[hour][1]}",
                                                      secret)
                    results[mode]["GET /api/export.mp4"].append({"wall_s": wall, "first_byte_s": first,
                                                                 "body_bytes": body})
            for mode in modes:
                for span, (frm, to_) in spans.items():
                    cli, http = [], []
                    for _ in range(args.reps):
                        b.evict(segs) if mode == "cold" else warm()
                        extra = [] if span == hour else ["--to", to_]
                        cli.append(b.first_byte_s([str(blackbox), "export", str(store), *extra, "-o", "-"]))
                        b.evict(segs) if mode == "cold" else warm()
                        http.append(b.http_first_byte_s(port, f"/api/export.mp4?from={frm}&to={to_}", secret))
                    ttfb[f"blackbox export -o -, {mode}, {span}"] = statistics.median(cli)
                    ttfb[f"GET /api/export.mp4, {mode}, {span}"] = statistics.median(http)
        finally:
            p.terminate()
            p.wait()

    print()
    print(f"## export264: {seconds} s of {SIZE} {FPS} fps H.264 ({seconds * FPS} frames, {clip.name} looped, "
          f"{store_bytes / 1e9:.2f} GB used in {len(segs)} segment files of {file_bytes / 1e9:.2f} GB); "
          f"median of {args.reps}")
    print()
    print(f"export check (1 minute): ffprobe {probe}; ffmpeg -xerror: ok")
    print()
    print("| cache | contender | wall s | MB/s | vs cat | CPU s | peak RSS MiB |")
    print("|---|---|--:|--:|--:|--:|--:|")
    table = {}
    for mode in modes:
        cat_wall = statistics.median(x["wall_s"] for x in results[mode]["cat segment files > /dev/null"])
        for name, reps in results[mode].items():
            wall = statistics.median(x["wall_s"] for x in reps)
            cpu = statistics.median(x["utime_s"] + x["stime_s"] for x in reps) if "utime_s" in reps[0] else None
            rss = statistics.median(x["maxrss_kib"] for x in reps) / 1024 if "maxrss_kib" in reps[0] else None
            table[f"{mode} {name}"] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss,
                                       "mb_s": store_bytes / wall / 1e6, "vs_cat": cat_wall / wall}
            print(f"| {mode} | {name} | {wall:.2f} | {store_bytes / wall / 1e6:.0f} | {cat_wall / wall:.2f}x | "
                  f"{b.fmt(cpu, '.2f')} | {b.fmt(rss, '.1f')} |")
    print()
    print("| time to first byte | " + " | ".join(f"{m}, {s}" for m in modes for s in spans) + " |")
    print("|---|" + "--:|" * (len(modes) * len(spans)))
    for who in ("blackbox export -o -", "GET /api/export.mp4"):
        print(f"| {who} | " + " | ".join(f"{ttfb[f'{who}, {m}, {s}'] * 1000:.0f} ms" for m in modes for s in spans) + " |")
    print()
    print("MB/s: used segment bytes per second for every row (cat reads the preallocated tails too). "
          "GET /api/export.mp4: a running `blackbox run` (recording a 160x120 camera meanwhile) serving the "
          "whole span to a Python client on 127.0.0.1 (the server also records, so its CPU and RSS are not shown). "
          "`blackbox export -o -` first byte includes process start; GET's is request sent to first body byte.")
    return {"seconds": seconds, "clip": str(clip), "store_bytes": store_bytes, "file_bytes": file_bytes,
            "segments": len(segs), "reps": args.reps, "export_check": probe, "runs": results, "table": table,
            "time_to_first_byte_s": ttfb}
