import { $, h, icon, sleep, toast, ApiError, api, camq, fmtTime, dayKey, iso, tms, fmtDur, zoneSwitch, spans, segRanges, barFill } from './util.js';
import { lastStatus } from './status.js';
import { views, current } from './nav.js';
import { zoomable, fullscreenButton, toggleFullscreen } from './zoom.js';

// ---------------------------------------------------------------------------------------------
// Player. H.264 footage plays in a plain <video> over the on-the-fly export of the timeline
// window (/api/export.mp4, seeking by Range), its time mapped back to UTC with the export's
// clock points (/api/export.json?clock=1). Motion JPEG footage (older recordings, or
// video_codec=mjpeg) is shown frame by frame from /api/frame, paced by X-Timestamp.

views.player = (() => {
  const root = $('#view-player');
  let built = false, canvas, video, stage, zoom, timeChip, speedChip, gpsChip, msg, range, trackEl, labels, playBtn, info, dlBtn, exportBtn, protBtn, unprotBtn, winSeg;
  let ahead = null; // MJPEG: the next frame, fetched while the current one shows
  // The <video> source: the window it covers, its clock points [[s, utc_ms]...], or null (MJPEG).
  let vsrc = null, vlastTs = null;
  let cur = null;               // {ts, seq, next, prev}
  let playing = false, speed = 1, token = 0, anchorWall = 0, anchorTs = 0, interval = 1000 / 30;
  let win = { from: 0, to: 0, len: 10 * 60000 }, segs = [], prot = [];
  let scrubbing = false, scrubBusy = false, scrubWanted = null;
  // The GPS track of the window: [[utc_ms, speed m/s]...] from /api/export.gpx; the unit from
  // the config's speed_unit.
  let track = [], unit = null;

  /** Fetches and decodes one frame. null when there is none (404). */
  async function fetchFrame(query) {
    let r;
    try { r = await fetch(camq(`/api/frame?${query}`), { credentials: 'same-origin', cache: 'no-store' }); } catch { throw new ApiError(0, 'The device did not answer.'); }
    if (r.status === 401) { location.assign('/login'); throw new ApiError(401, 'Signed out'); }
    if (r.status === 404) return null;
    if (!r.ok) { const j = await r.json().catch(() => null); throw new ApiError(r.status, (j && j.error) || `${r.status}`); }
    const num = (k) => { const v = r.headers.get(k); return v === null || v === '' ? null : Number(v); };
    const ts = num('X-Timestamp');
    const bmp = await createImageBitmap(await r.blob());
    return { ts: ts === null ? null : ts * 1000, seq: num('X-Seq'), next: num('X-Next-Seq'), prev: num('X-Prev-Seq'), bmp };
  }
  function show(f) {
    if (canvas.width !== f.bmp.width || canvas.height !== f.bmp.height) { canvas.width = f.bmp.width; canvas.height = f.bmp.height; }
    canvas.getContext('2d').drawImage(f.bmp, 0, 0);
    f.bmp.close();
    if (cur && f.ts !== null && cur.ts !== null && f.seq === cur.next && f.ts > cur.ts) interval = 0.8 * interval + 0.2 * (f.ts - cur.ts);
    cur = { ts: f.ts, seq: f.seq, next: f.next, prev: f.prev };
    stage.dataset.shown = String(Number(stage.dataset.shown || 0) + 1);
    stage.dataset.seq = String(f.seq);
    msg.hidden = true;
    timeChip.textContent = fmtTime(cur.ts, { date: true, frac: true });
    timeChip.dataset.ts = String(cur.ts);
    showGps(cur.ts);
    checkExport();
    if (!scrubbing) {
      if (cur.ts > win.to || cur.ts < win.from) setWindow(cur.ts);
      range.value = String(Math.round((cur.ts - win.from) / 100));
    }
    const seg = segs.find((s) => cur.ts >= s.from && (cur.ts <= s.to || s.seg.open));
    info.textContent = `Frame ${cur.seq}` + (seg ? ` · segment ${fmtTime(seg.from)} – ${fmtTime(seg.to, { label: false })}` : '');
    dlBtn.hidden = !seg;
    if (seg) { dlBtn.href = camq(`/api/segments/${seg.seg.id}/export.mp4`); }
  }
  /** The speedometer: the speed of the track point at most 2 s before `ts`; hidden without one. */
  function showGps(ts) {
    let lo = 0, hi = track.length - 1, p = null;
    while (ts !== null && lo <= hi) { const mid = (lo + hi) >> 1; if (track[mid][0] <= ts) { p = track[mid]; lo = mid + 1; } else hi = mid - 1; }
    const ok = p && ts - p[0] <= 2000;
    gpsChip.hidden = !ok;
    if (ok) gpsChip.textContent = unit === 'mph' ? `${Math.round(p[1] * 2.236936)} mph` : `${Math.round(p[1] * 3.6)} km/h`;
  }
  /** Loads the window's GPS track (GPX, speed in m/s). */
  async function loadTrack() {
    unit = await api('/api/config').then((c) => c.speed_unit || 'kmh').catch(() => unit || 'kmh');
    track = [];
    try {
      const r = await fetch(`/api/export.gpx?from=${iso(win.from - 2000)}&to=${iso(win.to)}`, { credentials: 'same-origin' });
      if (r.ok) {
        const doc = new DOMParser().parseFromString(await r.text(), 'application/xml');
        for (const p of doc.getElementsByTagName('trkpt')) {
          const t = Date.parse((p.getElementsByTagName('time')[0] || {}).textContent);
          const sp = p.getElementsByTagNameNS('*', 'speed')[0];
          if (!Number.isNaN(t) && sp) track.push([t, Number(sp.textContent)]);
        }
        track.sort((a, b) => a[0] - b[0]);
      }
    } catch { track = []; }
    showGps(cur ? cur.ts : null);
  }
  function showMsg(text) { msg.replaceChildren(h('strong', { text })); msg.hidden = false; }

  // --- H.264: the <video> path -----------------------------------------------------------------
  /** UTC ms shown at video time `t` (s): the clock point at or before it, plus the time since. */
  function utcAt(t) {
    const c = vsrc.clock;
    let lo = 0, hi = c.length - 1;
    if (hi < 0) return null;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (c[mid][0] <= t) lo = mid; else hi = mid - 1; }
    return c[lo][1] + Math.max(0, t - c[lo][0]) * 1000;
  }
  /** Video time (s) of UTC `ms`: the last clock point at or before it, plus the time since
   *  (never past the next point: a gap in the footage is cut out of the video). */
  function timeAt(ms) {
    const c = vsrc.clock;
    let lo = 0, hi = c.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (c[mid][1] <= ms) lo = mid; else hi = mid - 1; }
    const next = c[lo + 1] ? c[lo + 1][0] : Infinity;
    return Math.min(c[lo][0] + Math.max(0, ms - c[lo][1]) / 1000, next);
  }
  /** Loads the window's footage into the <video> when it is H.264; false for MJPEG or none. */
  async function loadVideo() {
    const q = `from=${iso(win.from)}&to=${iso(win.to)}`;
    let x = null;
    try { x = await api(camq(`/api/export.json?${q}&clock=1`)); } catch { x = null; }
    if (!x || x.codec !== 'h264' || !x.clock || !x.clock.length) { vsrc = null; video.hidden = true; canvas.hidden = false; return false; }
    if (vsrc && vsrc.q === q) return true;
    vsrc = { q, from: win.from, to: win.to, clock: x.clock, end: tms(x.end), fps: x.frames && x.duration_s > 0 ? x.frames / x.duration_s : 0 };
    video.hidden = false; canvas.hidden = true;
    video.src = camq(`/api/export.mp4?${q}`);
    await new Promise((res) => { video.addEventListener('loadedmetadata', res, { once: true }); video.addEventListener('error', res, { once: true }); });
    if (video.error) { showMsg(`This browser cannot play the recording (${video.error.message || video.error.code}). Download it instead.`); return false; }
    return true;
  }
  /** The <video>'s picture changed: the time chip, the scrub bar, the segment line. */
  /** `mt`: the presentation time of the frame on screen (requestVideoFrameCallback's
   *  mediaTime), so the chip shows that frame's own capture time, not a time between frames. */
  function videoShown(mt) {
    if (!vsrc) return;
    const ts = utcAt(mt ?? video.currentTime);
    if (ts === null) return;
    if (playing && vlastTs !== null && ts - vlastTs > 2000 * Math.max(1, speed)) toast(`Skipped ${fmtDur((ts - vlastTs) / 1000)} without footage`);
    vlastTs = ts;
    cur = { ts, seq: null, next: null, prev: null };
    msg.hidden = true;
    timeChip.textContent = fmtTime(ts, { date: true, frac: true });
    timeChip.dataset.ts = String(ts);
    showGps(ts);
    checkExport();
    if (!scrubbing) range.value = String(Math.round((ts - win.from) / 100));
    const seg = segs.find((sg) => ts >= sg.from && (ts <= sg.to || sg.seg.open));
    info.textContent = (seg ? `Segment ${fmtTime(seg.from)} – ${fmtTime(seg.to, { label: false })}` : 'Recording') + ' · H.264';
    dlBtn.hidden = !seg;
    if (seg) dlBtn.href = camq(`/api/segments/${seg.seg.id}/export.mp4`);
  }
  let frameMedia = null; // the mediaTime of the frame on screen
  function onVideoFrame(_now, meta) {
    frameMedia = meta && typeof meta.mediaTime === 'number' ? meta.mediaTime : null;
    videoShown(frameMedia ?? undefined);
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onVideoFrame);
  }
  async function videoSeek(ms) {
    if (!vsrc || ms < vsrc.from || ms >= vsrc.to) {
      await setWindow(ms);
      if (!vsrc) return false;
    }
    video.currentTime = timeAt(ms);
    vlastTs = null;
    await new Promise((res) => video.addEventListener('seeked', res, { once: true }));
    videoShown();
    return true;
  }
  /** The window's video ended: go on with the next window's footage, if any. */
  async function videoEnded() {
    if (!playing || !vsrc) return;
    const after = segs.filter((sg) => sg.to > vsrc.to || sg.seg.open).length > 0 || (lastStatus && lastStatus.newest && tms(lastStatus.newest) > vsrc.end + 1000);
    if (!after) { pause(); toast('End of the recorded footage'); return; }
    const next = vsrc.end + 1;
    await setWindow(next + win.len / 2 - 1000);
    if (vsrc && await videoSeek(Math.max(next, vsrc.from))) { video.playbackRate = speed; video.play().catch(() => {}); } else pause();
  }

  async function seek(ms, { quiet = false } = {}) {
    if (ms < win.from || ms >= win.to) await setWindow(ms);
    if (vsrc && await videoSeek(ms)) return true;
    const f = await fetchFrame(`at=${encodeURIComponent(iso(ms))}`).catch((e) => { toast(e.message, true); return null; });
    if (!f) {
      // Nothing within 5 s: jump to the nearest footage in the window, if any.
      const after = segs.filter((s) => s.from > ms).sort((a, b) => a.from - b.from)[0];
      if (after && !quiet) return seek(after.from + 1, { quiet: true });
      if (!quiet) showMsg(`No footage at ${fmtTime(ms)}`);
      return false;
    }
    show(f);
    anchorTs = cur.ts; anchorWall = performance.now();
    return true;
  }

  async function loop(my) {
    while (playing && my === token) {
      if (vsrc) {
        // The frames led into H.264 footage: the <video> takes over from here.
        const t = cur.ts;
        if (await videoSeek(t)) { token++; play(); }
        return;
      }
      const target = anchorTs + (performance.now() - anchorWall) * speed;
      let f = null;
      const behind = target - cur.ts;
      // Keep up with real time × speed: when more than two frames behind, jump to the frame
      // nearest the play clock instead of the next one.
      if (behind > 2.5 * interval || cur.next === null) {
        f = await fetchFrame(`at=${encodeURIComponent(iso(target))}`).catch(() => null);
        if (f && f.seq !== null && f.seq <= cur.seq) { f.bmp.close(); f = null; }
      }
      if (!f && cur.next !== null) {
        const want = cur.next;
        if (ahead && ahead.seq === want) { f = await ahead.p; ahead = null; } else f = await fetchFrame(`seq=${want}`).catch(() => null);
      }
      if (my !== token) { if (f) f.bmp.close(); return; }
      if (!f) {
        if (cur.next === null) { pause(); toast('End of the recorded footage'); return; }
        await sleep(500); // a hiccup: try again
        continue;
      }
      const now = performance.now();
      const t2 = anchorTs + (now - anchorWall) * speed;
      if (f.ts - t2 > 2000) {
        // A gap in the footage: skip it rather than wait through it.
        toast(`Skipped ${fmtDur((f.ts - t2) / 1000)} without footage`);
        anchorTs = f.ts; anchorWall = now;
      } else if (f.ts > t2) {
        await sleep((f.ts - t2) / speed);
        if (my !== token) { f.bmp.close(); return; }
      }
      show(f);
      // Fetch the next frame while this one is on screen: every frame at 1x.
      if (cur.next !== null && (!ahead || ahead.seq !== cur.next)) {
        if (ahead) ahead.p.then((x) => x && x.bmp.close());
        ahead = { seq: cur.next, p: fetchFrame(`seq=${cur.next}`).catch(() => null) };
      }
    }
  }

  /** One frame forward (+1) or back (-1), paused. */
  async function step(dir) {
    if (!cur) return;
    pause();
    if (vsrc) {
      // From the start of the frame on screen to a quarter into the next (or previous) one:
      // inside that frame whatever the jitter of the capture times.
      const fps = vsrc.fps || (lastStatus && lastStatus.fps) || 30;
      const base = frameMedia ?? video.currentTime;
      const seeked = new Promise((res) => video.addEventListener('seeked', res, { once: true }));
      video.currentTime = Math.max(0, base + (dir + 0.25) / fps);
      await seeked;
      // The new frame's own time, once it is on screen (a repaint of the old one doesn't count).
      let mt = null;
      for (let i = 0; i < 4 && video.requestVideoFrameCallback && mt === null; i++) {
        const m = await new Promise((res) => { video.requestVideoFrameCallback((_n, meta) => res(meta.mediaTime)); setTimeout(() => res(null), 300); });
        if (m !== null && Math.abs(m - base) > 0.5 / fps) mt = m;
      }
      if (mt !== null) frameMedia = mt;
      videoShown(mt ?? undefined);
      return;
    }
    const seq = dir > 0 ? cur.next : cur.prev;
    if (seq === null || seq === undefined) { toast(dir > 0 ? 'Last frame' : 'First frame'); return; }
    const f = await fetchFrame(`seq=${seq}`).catch((e) => { toast(e.message, true); return null; });
    if (f) show(f);
  }
  /** Keyboard: Space play/pause, ←/→ 5 s, `,`/`.` one frame, f fullscreen, +/−/0 zoom. */
  function onKey(e) {
    if (current !== 'player' || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest && e.target.closest('input:not([type=range]),select,textarea,[contenteditable]')) return;
    const jumpBy = async (d) => { if (!cur) return; const was = playing; pause(); await seek(cur.ts + d); if (was) play(); };
    const k = e.key;
    if (k === ' ' || k === 'k') {
      // Space on a focused button below the picture presses it; elsewhere it plays or pauses.
      if (k === ' ' && e.target.tagName === 'BUTTON' && !stage.contains(e.target)) return;
      if (playing) pause(); else play();
    }
    else if (k === 'ArrowLeft') jumpBy(-5000);
    else if (k === 'ArrowRight') jumpBy(5000);
    else if (k === ',') step(-1);
    else if (k === '.') step(1);
    else if (k === 'f') toggleFullscreen(stage, toast);
    else if (k === '+' || k === '=') zoom.zoomAt(zoom.z + 0.5);
    else if (k === '-') zoom.zoomAt(zoom.z - 0.5);
    else if (k === '0') zoom.reset();
    else return;
    e.preventDefault();
  }
  function play() {
    if (!cur) return;
    if (vsrc) {
      playing = true; token++; vlastTs = null;
      video.playbackRate = speed;
      video.play().catch((e) => { toast(`Cannot play: ${e.message}`, true); pause(); });
      playBtn.replaceChildren(icon('pause')); playBtn.setAttribute('aria-label', 'Pause');
      return;
    }
    playing = true; token++;
    anchorTs = cur.ts; anchorWall = performance.now();
    playBtn.replaceChildren(icon('pause')); playBtn.setAttribute('aria-label', 'Pause');
    loop(token);
  }
  function pause() {
    playing = false; token++;
    if (video && !video.paused) video.pause();
    playBtn.replaceChildren(icon('play')); playBtn.setAttribute('aria-label', 'Play');
  }
  function setSpeed(s) {
    speed = s;
    if (video) video.playbackRate = s;
    if (cur) { anchorTs = cur.ts; anchorWall = performance.now(); }
    speedChip.textContent = `${s}×`;
    for (const b of winSeg.speed.querySelectorAll('button')) b.classList.toggle('on', Number(b.dataset.v) === s);
  }

  async function setWindow(center) {
    win.from = Math.floor((center - win.len / 2) / 1000) * 1000;
    win.to = win.from + win.len;
    range.max = String(win.len / 100);
    labels.replaceChildren(h('span', { text: fmtTime(win.from) }), h('span', { text: fmtTime(win.to) }));
    const [sr, pr] = await Promise.all([
      api(camq(`/api/segments?from=${iso(win.from)}&to=${iso(win.to)}`)).catch(() => ({ segments: [] })),
      api(camq('/api/protected')).catch(() => ({ ranges: [] })),
    ]);
    segs = segRanges(sr.segments || []);
    prot = (pr.ranges || []).map((r) => ({ from: tms(r.from), to: tms(r.to) }));
    if (!vsrc || vsrc.from !== win.from || vsrc.to !== win.to) await loadVideo();
    trackEl.replaceChildren();
    barFill(trackEl, segs, prot, win.from, win.to);
    const anyProt = spans(prot, win.from, win.to).length > 0;
    protBtn.replaceChildren(icon('shield'), `Protect ${fmtTime(win.from, { label: false })}–${fmtTime(win.to)}`);
    unprotBtn.hidden = !anyProt;
    loadEvents();
    loadTrack();
  }

  /** "Export clip": the Export page on the event on screen, else ±30 s around the frame on
   *  screen (never the whole window), cut to the footage there. */
  let evWins = [];
  async function loadEvents() {
    try {
      const r = await api(`/api/incidents?from=${encodeURIComponent(iso(win.from - 600000))}&to=${encodeURIComponent(iso(win.to))}`);
      evWins = r.incidents.map((e) => ({ from: tms(e.from), to: tms(e.to) }));
    } catch { evWins = []; }
    checkExport();
  }
  function checkExport() {
    const t = cur && cur.ts !== null ? cur.ts : win.from + win.len / 2;
    const ev = evWins.find((e) => e.from <= t && t <= e.to);
    let [a, b] = ev ? [ev.from, ev.to + 1] : [t - 30000, t + 30000];
    const here = segs.filter((r) => r.to >= a && r.from < b);
    exportBtn.hidden = !here.length;
    if (!here.length) return;
    a = Math.max(a, Math.min(...here.map((r) => r.from)));
    b = Math.min(b, Math.max(...here.map((r) => r.to)) + 1);
    exportBtn.href = `#export?from=${Math.floor(a)}&to=${Math.ceil(b)}`;
    exportBtn.title = ev ? 'Export this event as MP4' : 'Export 30 s either side of this frame as MP4';
  }

  async function protect(un) {
    try {
      await api(camq(un ? '/api/unprotect' : '/api/protect'), { method: 'POST', body: { from: iso(win.from), to: iso(win.to) } });
      toast(un ? 'Protection removed' : `Protected ${fmtTime(win.from, { label: false })}–${fmtTime(win.to)}`);
      setWindow(cur ? cur.ts : win.from + win.len / 2);
    } catch (e) { toast(e.message, true); }
  }

  async function scrubTo(ms) {
    scrubWanted = ms;
    if (scrubBusy) return;
    scrubBusy = true;
    while (scrubWanted !== null) {
      const t = scrubWanted; scrubWanted = null;
      if (vsrc && t >= vsrc.from && t < vsrc.to) {
        video.currentTime = timeAt(t);
        await new Promise((res) => video.addEventListener('seeked', res, { once: true }));
        videoShown();
        continue;
      }
      const f = await fetchFrame(`at=${encodeURIComponent(iso(t))}`).catch(() => null);
      if (f) show(f);
    }
    scrubBusy = false;
  }

  function build() {
    canvas = h('canvas', { class: 'frame', id: 'player-canvas', width: '16', height: '9' });
    canvas.style.cssText = 'position:absolute;inset:0;width:100%;height:100%;object-fit:contain';
    video = h('video', { class: 'frame', id: 'player-video', playsinline: '', muted: '', preload: 'auto', hidden: true });
    video.muted = true;
    video.style.cssText = 'position:absolute;inset:0;width:100%;height:100%;object-fit:contain;background:#000';
    video.addEventListener('timeupdate', () => { if (!video.requestVideoFrameCallback) videoShown(); });
    video.addEventListener('ended', () => videoEnded());
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onVideoFrame);
    canvas.style.transformOrigin = video.style.transformOrigin = '0 0';
    timeChip = h('span', { class: 'chip time', id: 'player-time', text: '–' });
    speedChip = h('span', { class: 'chip', text: '1×' });
    gpsChip = h('span', { class: 'chip', id: 'player-gps', title: 'Speed (GPS)', hidden: true });
    msg = h('div', { class: 'stage-msg', hidden: true });
    stage = h('div', { class: 'stage player-stage', id: 'player-stage' }, canvas, video, msg);
    zoom = zoomable(stage, { targets: () => [canvas, video], source: () => (vsrc ? video : canvas), id: 'player' });
    // The time chip sits top right: off the time burnt in at the top left and off the lower
    // middle, where number plates are.
    stage.append(h('div', { class: 'overlay tr' }, timeChip, gpsChip, speedChip), zoom.minimap,
      h('div', { class: 'overlay br' }, zoom.chip, fullscreenButton(stage, toast)));
    // A tap plays or pauses; a drag pans (zoomed) and a double tap zooms, so neither toggles.
    let tapTimer = 0;
    stage.addEventListener('click', (e) => {
      if (e.target.closest('button,a,input') || zoom.dragged) return;
      clearTimeout(tapTimer);
      tapTimer = setTimeout(() => (playing ? pause() : play()), 250);
    });
    stage.addEventListener('dblclick', () => clearTimeout(tapTimer));
    document.addEventListener('keydown', onKey);
    setInterval(() => { if (current === 'player' && zoom.z > 1.001) zoom.drawMinimap(); }, 500);

    trackEl = h('div', { class: 'track' });
    range = h('input', { type: 'range', min: '0', max: '6000', step: '1', value: '0', 'aria-label': 'Position', id: 'scrub' });
    range.addEventListener('pointerdown', () => { scrubbing = true; });
    range.addEventListener('input', () => { scrubbing = true; scrubTo(win.from + Number(range.value) * 100); });
    range.addEventListener('change', async () => {
      const was = playing; pause();
      await seek(win.from + Number(range.value) * 100);
      scrubbing = false;
      if (was) play();
    });
    labels = h('div', { class: 'scrub-labels' });

    // Sound (H.264 recordings with a microphone): off until asked for, as browsers start
    // media muted; the choice is remembered.
    const showSound = () => { soundBtn.replaceChildren(icon(video.muted ? 'sound-off' : 'sound')); soundBtn.setAttribute('aria-label', video.muted ? 'Sound on' : 'Sound off'); soundBtn.setAttribute('aria-pressed', String(!video.muted)); };
    const soundBtn = h('button', { class: 'btn icon', type: 'button', id: 'player-sound', title: 'Sound', onclick: () => { video.muted = !video.muted; localStorage.setItem('bb.sound', video.muted ? 'off' : 'on'); showSound(); } });
    video.muted = localStorage.getItem('bb.sound') !== 'on';
    showSound();
    playBtn = h('button', { class: 'btn primary play', type: 'button', id: 'play', 'aria-label': 'Play', onclick: () => (playing ? pause() : play()) }, icon('play'));
    const jump = (d) => async () => { if (!cur) return; const was = playing; pause(); await seek(cur.ts + d); if (was) play(); };
    const speeds = h('div', { class: 'seg', role: 'group', 'aria-label': 'Speed', id: 'speed' }, [0.5, 1, 2, 4, 8].map((s) =>
      h('button', { type: 'button', 'data-v': String(s), text: `${s}×`, onclick: () => setSpeed(s) })));
    const lens = h('div', { class: 'seg', role: 'group', 'aria-label': 'Timeline window' }, [[2, '2 min'], [10, '10 min'], [60, '1 h']].map(([m, t]) => {
      const b = h('button', { type: 'button', text: t, onclick: () => { win.len = m * 60000; for (const x of lens.children) x.classList.toggle('on', x === b); setWindow(cur ? cur.ts : win.from); } });
      if (m === 10) b.classList.add('on');
      return b;
    }));
    winSeg = { speed: speeds };
    info = h('p', { class: 'muted', id: 'player-info' });
    dlBtn = h('a', { class: 'btn', href: '#', download: '', id: 'download-seg', hidden: true }, icon('download'), 'Download segment (MP4)');
    exportBtn = h('a', { class: 'btn', href: '#export', id: 'export-clip', hidden: true, title: 'Export 30 s either side of this frame as MP4' }, icon('download'), 'Export clip (MP4)…');
    protBtn = h('button', { class: 'btn', type: 'button', id: 'protect', onclick: () => protect(false) }, icon('shield'), 'Protect');
    unprotBtn = h('button', { class: 'btn ghost', type: 'button', id: 'unprotect', hidden: true, onclick: () => protect(true) }, 'Unprotect');
    const back = h('a', { class: 'btn ghost', href: '#recordings', id: 'player-back', onclick: (e) => { e.preventDefault(); location.hash = cur ? `recordings?day=${dayKey(cur.ts)}` : 'recordings'; } }, '‹ Day');

    root.append(h('div', { class: 'toolbar' }, back, h('span', { class: 'grow' }), zoneSwitch('zone-player', () => { if (cur) { timeChip.textContent = fmtTime(cur.ts, { date: true, frac: true }); setWindow(cur.ts); } })),
      stage,
      h('div', { class: 'scrub' }, trackEl, range), labels,
      h('div', { class: 'transport' },
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Back 10 seconds', onclick: jump(-10000) }, icon('back')),
        h('button', { class: 'btn icon step', type: 'button', id: 'frame-back', 'aria-label': 'Previous frame', title: 'Previous frame (,)', onclick: () => step(-1), text: '‹|' }),
        playBtn,
        h('button', { class: 'btn icon step', type: 'button', id: 'frame-fwd', 'aria-label': 'Next frame', title: 'Next frame (.)', onclick: () => step(1), text: '|›' }),
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Forward 10 seconds', onclick: jump(10000) }, icon('fwd')),
        soundBtn, speeds, lens, zoom.row),
      info,
      h('div', { class: 'btn-row' }, dlBtn, exportBtn, protBtn, unprotBtn));
    setSpeed(1);
    built = true;
  }

  return {
    async enter(params) {
      if (!built) build();
      pause();
      const t = Number(params.get('t')) || (lastStatus && lastStatus.newest ? tms(lastStatus.newest) - 10000 : Date.now() - 60000);
      cur = null; vsrc = null; ahead = null; video.removeAttribute('src');
      zoom.reset();
      showMsg('Loading…');
      await setWindow(t);
      if (await seek(t)) play();
    },
    leave() { pause(); },
  };
})();
