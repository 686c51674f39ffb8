#!/usr/bin/env python3
"""Plays an MP4 in headless Chromium's plain <video> (through chromedriver's WebDriver HTTP
API, no client library) and prints what the browser decoded:
CHROMIUM-PLAY [--video-only] FILE.mp4 [SECONDS].

Exit 0 when the video played SECONDS (default 3) of media time with pictures and sound (not
with --video-only) decoded
(`webkitVideoDecodedByteCount`, `webkitAudioDecodedByteCount`) and no media error. Serves the
file from a throwaway http.server on 127.0.0.1 (Range requests, as the dashboard serves
exports); needs Debian's chromium and chromium-driver."""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

args = [a for a in sys.argv[1:] if a != "--video-only"]
video_only = "--video-only" in sys.argv
path = os.path.abspath(args[0])
want = float(args[1]) if len(args) > 1 else 3.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Handler(http.server.SimpleHTTPRequestHandler):
    """Files of the MP4's directory, with single Range requests (what <video> asks)."""

    def __init__(self, *a, **k):
        super().__init__(*a, directory=os.path.dirname(path), **k)

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/play.html":
            body = b"<!doctype html><video id=v muted playsinline src='/media.mp4'></video>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = open(path, "rb").read()
        rng = self.headers.get("Range")
        start, end = 0, len(data) - 1
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else 0
            end = min(int(b), len(data) - 1) if b else len(data) - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        try:
            self.wfile.write(data[start:end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass


web_port = free_port()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", web_port), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
drv_port = free_port()
drv = subprocess.Popen(["chromedriver", f"--port={drv_port}", "--allowed-ips=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wd(method, p, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{drv_port}{p}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


try:
    for _ in range(200):
        try:
            wd("GET", "/status")
            break
        except OSError:
            time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
        "--mute-audio", "--disable-background-networking"]}}}}
    sid = wd("POST", "/session", caps)["sessionId"]
    wd("POST", f"/session/{sid}/url", {"url": f"http://127.0.0.1:{web_port}/play.html"})
    script = """
const done = arguments[arguments.length - 1], want = arguments[0];
const v = document.getElementById('v');
const report = (why) => done({why, t: v.currentTime, duration: v.duration, error: v.error && (v.error.message || v.error.code),
  audio_bytes: v.webkitAudioDecodedByteCount, video_bytes: v.webkitVideoDecodedByteCount,
  frames: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : null,
  text_tracks: v.textTracks.length, width: v.videoWidth, height: v.videoHeight});
v.addEventListener('error', () => report('error'));
v.addEventListener('ended', () => report('ended'));
const tick = () => { if (v.currentTime >= want) report('played'); else setTimeout(tick, 100); };
v.play().then(tick, (e) => done({why: 'play() refused: ' + e}));
setTimeout(() => report('timeout'), 60000);
"""
    r = wd("POST", f"/session/{sid}/execute/async", {"script": script, "args": [want]})
    wd("DELETE", f"/session/{sid}")
finally:
    drv.terminate()
    srv.shutdown()
print("chromium: " + json.dumps(r))
ok = r.get("why") in ("played", "ended") and not r.get("error") and r.get("t", 0) >= min(want, (r.get("duration") or 0) - 0.2) \
    and (video_only or (r.get("audio_bytes") or 0) > 0) and (r.get("video_bytes") or 0) > 0
print("CHROMIUM PLAYED" if ok else "CHROMIUM DID NOT PLAY")
sys.exit(0 if ok else 1)
