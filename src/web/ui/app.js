// blackbox dashboard. Plain JS module, no dependencies, talks only to this device's /api.
// Pages: Live, Recordings (day timeline), Player (stored frames), Export (MP4 of a range),
// Settings, System, and the camera-controls drawer. The API contract is docs/API.md.

// ---------------------------------------------------------------------------------------------
// Small helpers

const $ = (sel, el = document) => el.querySelector(sel);

/** Element builder: h('div', {class: 'x', onclick: f}, child, 'text', ...). Text is never HTML. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const ICONS = {
  camera: 'M9 3 7.2 5H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.2L15 3zm3 5a5 5 0 1 1 0 10 5 5 0 0 1 0-10zm0 2a3 3 0 1 0 0 6 3 3 0 0 0 0-6z',
  full: 'M4 4h6v2H6v4H4zm10 0h6v6h-2V6h-4zM4 14h2v4h4v2H4zm14 0h2v6h-6v-2h4z',
  shield: 'M12 2 4 5v6c0 5 3.4 9.5 8 11 4.6-1.5 8-6 8-11V5zm-1 14-4-4 1.4-1.4 2.6 2.6 5.6-5.6L18 9z',
  sliders: 'M4 6h9v2H4zm13 0h3v2h-3zm-3-2h2v6h-2zM4 16h3v2H4zm7 0h9v2h-9zm-3-2h2v6H8z',
  play: 'M7 4v16l13-8z',
  pause: 'M6 4h4v16H6zm8 0h4v16h-4z',
  back: 'M11 6v12L2 12zm10 0v12l-9-6z',
  fwd: 'M13 6v12l9-6zM3 6v12l9-6z',
  download: 'M11 3h2v9l3.5-3.5 1.4 1.4L12 15.8 6.1 9.9l1.4-1.4L11 12zM4 18h16v2H4z',
  rec: 'M12 5a7 7 0 1 1 0 14 7 7 0 0 1 0-14z',
  stop: 'M6 6h12v12H6z',
};
const icon = (name) => {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

let toastTimer = 0;
function toast(msg, bad = false) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = bad ? 'toast bad' : 'toast';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), bad ? 6000 : 3500);
}

class ApiError extends Error {
  constructor(status, message, key) {
    super(message);
    this.status = status;
    this.key = key;
  }
}

/** JSON API call. 401 sends the browser to the login page. Errors carry the server's message. */
async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'The device did not answer. Is this phone still on its Wi-Fi?');
  }
  if (r.status === 401) {
    location.assign('/login');
    throw new ApiError(401, 'Signed out');
  }
  const data = (r.headers.get('Content-Type') || '').includes('json') ? await r.json().catch(() => null) : null;
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`, data && data.key);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Time: every displayed time says UTC or local.

const zone = {
  get utc() { return localStorage.getItem('bb.zone') !== 'local'; },
  set(utc) { localStorage.setItem('bb.zone', utc ? 'utc' : 'local'); },
  get label() { return this.utc ? 'UTC' : 'local'; },
};
const pad = (n, w = 2) => String(n).padStart(w, '0');
const parts = (ms) => {
  const d = new Date(ms);
  return zone.utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds(), wd: d.getUTCDay() }
    : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds(), wd: d.getDay() };
};
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
/** "14:03:22 UTC" / "15:03:22.120 local" / "Sat 21 Nov 14:03 UTC". */
function fmtTime(ms, { date = false, secs = true, frac = false, label = true } = {}) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const p = parts(ms);
  let s = `${pad(p.h)}:${pad(p.mi)}`;
  if (secs) s += `:${pad(p.s)}`;
  if (frac) s += `.${pad(p.ms, 3)}`;
  if (date) s = `${DAYS[p.wd]} ${p.d} ${MONTHS[p.mo]} ${p.y}, ${s}`;
  return label ? `${s} ${zone.label}` : s;
}
const fmtDay = (ms) => { const p = parts(ms); return `${DAYS[p.wd]} ${p.d} ${MONTHS[p.mo]} ${p.y}`; };
const dayKey = (ms) => { const p = parts(ms); return `${p.y}-${pad(p.mo + 1)}-${pad(p.d)}`; };
/** Start of the day `key` (YYYY-MM-DD) in the chosen zone, and of the next day. */
function dayRange(key) {
  const [y, m, d] = key.split('-').map(Number);
  return zone.utc ? [Date.UTC(y, m - 1, d), Date.UTC(y, m - 1, d + 1)] : [new Date(y, m - 1, d).getTime(), new Date(y, m - 1, d + 1).getTime()];
}
const iso = (ms) => new Date(ms).toISOString();
const tms = (t) => (typeof t === 'number' ? t : Date.parse(t));
function fmtDur(s) {
  if (s > 0 && s < 1) return 'under 1 s';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(s % 60)} s`;
  const hh = Math.floor(m / 60);
  if (hh < 48) return `${hh} h ${pad(m % 60)} min`;
  return `${Math.floor(hh / 24)} d ${hh % 24} h`;
}
function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

/** UTC / local switch; `onchange` re-renders whatever shows times. */
function zoneSwitch(id, onchange) {
  const b1 = h('button', { type: 'button', text: 'UTC', 'aria-pressed': String(zone.utc) });
  const b2 = h('button', { type: 'button', text: 'Local', 'aria-pressed': String(!zone.utc) });
  const sync = () => {
    b1.classList.toggle('on', zone.utc); b2.classList.toggle('on', !zone.utc);
    b1.setAttribute('aria-pressed', String(zone.utc)); b2.setAttribute('aria-pressed', String(!zone.utc));
  };
  b1.onclick = () => { zone.set(true); sync(); onchange(); };
  b2.onclick = () => { zone.set(false); sync(); onchange(); };
  sync();
  return h('div', { class: 'seg', role: 'group', 'aria-label': 'Time zone', id }, b1, b2);
}

// ---------------------------------------------------------------------------------------------
// Recorder status: server-sent events, with polling as the fallback.

const statusListeners = new Set();
let lastStatus = null;
function onStatus(f) { statusListeners.add(f); if (lastStatus) f(lastStatus); return () => statusListeners.delete(f); }
let lastStatusAt = 0;
function setStatus(s) {
  lastStatus = s;
  lastStatusAt = Date.now();
  $('#conn').hidden = true;
  document.body.classList.remove('disconnected');
  const pill = $('#rec-pill');
  const state = s.state || (s.recording ? 'recording' : 'stopped');
  const label = { recording: 'REC', stopped: 'Stopped', camera_lost: 'Camera lost', card_full: 'Card full', starting: 'Starting' }[state] || state;
  pill.textContent = label;
  pill.className = 'pill ' + ({ recording: 'pill-rec', camera_lost: 'pill-lost', card_full: 'pill-lost', starting: 'pill-lost' }[state] || 'pill-stop');
  pill.title = s.camera || '';
  for (const f of statusListeners) f(s);
}
function offline() { disconnected(); }
/** No status for 5 s (events arrive at least every 2 s): the device is out of reach. Says so
 *  on every page, greys the REC pill and, on the live view, covers the picture; it clears by
 *  itself with the next status (the event stream and polling keep trying). */
function disconnected() {
  const conn = $('#conn');
  const last = lastStatus && lastStatus.newest ? tms(lastStatus.newest) : null;
  conn.textContent = 'Disconnected';
  conn.title = last ? `Disconnected — last frame ${fmtTime(last)}` : 'Disconnected';
  conn.hidden = false;
  document.body.classList.add('disconnected');
  const stage = $('#live-stage');
  if (stage) stage.dataset.disc = conn.title;
  const pill = $('#rec-pill');
  pill.className = 'pill pill-off';
  pill.textContent = 'Offline';
}
setInterval(() => {
  if (lastStatusAt && Date.now() - lastStatusAt > 5000 && !document.body.classList.contains('disconnected')) {
    disconnected();
    pollStatus();
  }
}, 1000);

let events = null;
async function pollStatus() {
  try { setStatus(await api('/api/status')); } catch (e) { if (e.status !== 401) offline(); }
}
function startEvents() {
  if (events) return;
  let gotOne = false;
  events = new EventSource('/api/events');
  events.addEventListener('status', (e) => {
    gotOne = true;
    try { setStatus(JSON.parse(e.data)); } catch { /* a torn event: the next one comes within 2 s */ }
  });
  events.onerror = () => {
    events.close();
    events = null;
    // Find out why (signed out? device gone? no event stream?), poll meanwhile, retry.
    pollStatus();
    setTimeout(startEvents, gotOne ? 1000 : 3000);
  };
}

// ---------------------------------------------------------------------------------------------
// Router: #live, #recordings?day=YYYY-MM-DD, #player?t=MS, #export?from=MS&to=MS, #settings, #system

const views = {};
let current = null;
function route() {
  const [name, query] = (location.hash.slice(1) || 'live').split('?');
  const params = new URLSearchParams(query || '');
  const view = views[name] ? name : 'live';
  if (current && current !== view && views[current].leave) views[current].leave();
  if (current && current !== view) window.scrollTo(0, 0);
  for (const sec of document.querySelectorAll('.view')) sec.hidden = sec.dataset.view !== view;
  for (const a of document.querySelectorAll('.tabs a')) {
    const on = a.dataset.view === view || (view === 'player' && a.dataset.view === 'recordings');
    a.classList.toggle('on', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  current = view;
  document.title = `blackbox · ${view[0].toUpperCase()}${view.slice(1)}`;
  views[view].enter(params);
}

// ---------------------------------------------------------------------------------------------
// Live

views.live = (() => {
  const root = $('#view-live');
  let built = false, img, video, stage, minimap, mmCanvas, mmWin, zoomChip, fpsChip, recChip, msg, zoomRange, recBtn, facts, mmTimer = 0, retryTimer = 0;
  let z = 1, cx = 0.5, cy = 0.5; // zoom and the centre of the visible window (0..1 of the frame)
  const pointers = new Map();
  let pinch = null;

  function apply() {
    z = clamp(z, 1, 4);
    const half = 0.5 / z;
    cx = clamp(cx, half, 1 - half); cy = clamp(cy, half, 1 - half);
    const W = stage.clientWidth, H = stage.clientHeight;
    img.style.transform = video.style.transform = `translate(${-(cx - half) * W * z}px, ${-(cy - half) * H * z}px) scale(${z})`;
    zoomChip.textContent = `${z.toFixed(1)}×`;
    zoomRange.value = String(z);
    stage.classList.toggle('zoomed', z > 1.001);
    const wasHidden = minimap.hidden;
    minimap.hidden = z <= 1.001;
    if (wasHidden && !minimap.hidden) drawMinimap();
    mmWin.style.left = `${(cx - half) * 100}%`; mmWin.style.top = `${(cy - half) * 100}%`;
    mmWin.style.width = mmWin.style.height = `${100 / z}%`;
  }
  /** Zoom to `nz` keeping the frame point under (px, py) (fractions of the stage) in place. */
  function zoomAt(nz, px = 0.5, py = 0.5) {
    nz = clamp(nz, 1, 4);
    const ix = cx - 0.5 / z + px / z, iy = cy - 0.5 / z + py / z;
    z = nz; cx = ix + 0.5 / z - px / z; cy = iy + 0.5 / z - py / z;
    apply();
  }
  function drawMinimap() {
    const p = pic();
    if (minimap.hidden || !(p.naturalWidth || p.videoWidth)) return;
    const c = mmCanvas.getContext('2d');
    try { c.drawImage(p, 0, 0, mmCanvas.width, mmCanvas.height); } catch { /* no frame yet */ }
  }
  const frac = (e) => { const r = stage.getBoundingClientRect(); return [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height]; };
  function onDown(e) {
    if (e.target.closest('button,a,input')) return;
    stage.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) || 1, z };
    }
  }
  function onMove(e) {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const W = stage.clientWidth, H = stage.clientHeight;
    if (pointers.size === 1) {
      cx -= (e.clientX - p.x) / (W * z); cy -= (e.clientY - p.y) / (H * z);
      p.x = e.clientX; p.y = e.clientY;
      apply();
    } else if (pointers.size === 2 && pinch) {
      p.x = e.clientX; p.y = e.clientY;
      const [a, b] = [...pointers.values()];
      const r = stage.getBoundingClientRect();
      zoomAt(pinch.z * Math.hypot(a.x - b.x, a.y - b.y) / pinch.d, ((a.x + b.x) / 2 - r.left) / r.width, ((a.y + b.y) / 2 - r.top) / r.height);
    }
  }
  function onUp(e) { pointers.delete(e.pointerId); if (pointers.size < 2) pinch = null; }

  // H.264 recordings play /api/live.mp4 (fragmented MP4) through Media Source Extensions:
  // ManagedMediaSource where it exists (Safari on iOS 17.1+), MediaSource elsewhere. Motion JPEG
  // recordings, and browsers without either, show /api/live.mjpeg in the <img>.
  const MS = window.ManagedMediaSource || window.MediaSource;
  const KEEP_S = 5; // seconds kept buffered behind the live edge
  const START_S = 1; // seconds buffered before playing starts: room for network and CPU hiccups
  let player = null; // the running H.264 stream: { ctl: AbortController }
  const h264 = () => !!(lastStatus && lastStatus.codec === 'h264');
  const canMse = () => !!(MS && MS.isTypeSupported && MS.isTypeSupported('video/mp4; codecs="avc1.42E01F"'));
  /** The element showing the picture now. */
  const pic = () => (player ? video : img);

  function startStream() {
    clearTimeout(retryTimer);
    stopStream();
    msg.hidden = true;
    if (!lastStatus) { retryTimer = setTimeout(startStream, 300); return; }
    if (h264()) {
      if (!canMse()) {
        showMsg('This browser cannot play the H.264 live view (no Media Source Extensions).', 'Recordings play in the Recordings tab; snapshots still work.');
        return;
      }
      img.hidden = true; video.hidden = false;
      const ctl = new AbortController();
      player = { ctl, codec: 'h264' };
      playMp4(ctl).catch((e) => {
        if (ctl.signal.aborted) return;
        streamFailed(e && e.message);
      });
    } else {
      video.hidden = true; img.hidden = false;
      img.src = '/api/live.mjpeg';
    }
    apply();
  }
  function stopStream() {
    clearTimeout(retryTimer);
    if (player) {
      player.ctl.abort();
      player = null;
      video.pause();
      video.removeAttribute('src');
      video.srcObject = null;
      video.load();
    }
    // Replacing the source ends the multipart request, freeing a viewer slot on the device.
    img.removeAttribute('src');
  }
  function showMsg(strong, detail) {
    msg.replaceChildren(h('strong', { text: strong }), h('span', { text: detail }));
    msg.hidden = false;
  }
  function streamFailed(why) {
    if (!player && !img.getAttribute('src')) return;
    const state = lastStatus && lastStatus.state;
    showMsg(state === 'camera_lost' ? 'The camera is not delivering frames.' : 'The live view is not available right now.',
      `${why ? why + '. ' : ''}The device may be restarting, busy with other viewers, or out of reach. Retrying…`);
    stopStream();
    retryTimer = setTimeout(startStream, 3000);
  }
  /** The avc1 codec string from the init segment's avcC (profile, constraints, level). */
  function codecOf(b) {
    for (let i = 4; i + 8 < b.length; i++) {
      if (b[i] === 0x61 && b[i + 1] === 0x76 && b[i + 2] === 0x63 && b[i + 3] === 0x43) {
        const x = (v) => v.toString(16).padStart(2, '0').toUpperCase();
        return `avc1.${x(b[i + 5])}${x(b[i + 6])}${x(b[i + 7])}`;
      }
    }
    return null;
  }
  async function playMp4(ctl) {
    const ms = new MS();
    const opened = new Promise((res) => ms.addEventListener('sourceopen', res, { once: true }));
    if (window.ManagedMediaSource && ms instanceof window.ManagedMediaSource) {
      video.disableRemotePlayback = true;
      video.srcObject = ms;
    } else {
      video.src = URL.createObjectURL(ms);
    }
    await opened;
    const r = await fetch('/api/live.mp4', { signal: ctl.signal, cache: 'no-store' });
    if (r.status === 401) { location.assign('/login'); return; }
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      throw new Error((j && j.error) || `HTTP ${r.status}`);
    }
    const reader = r.body.getReader();
    let head = new Uint8Array(0), sb = null, started = false;
    const queue = [];
    let queued = 0;
    const pump = () => {
      if (!sb || sb.updating || ms.readyState !== 'open') return;
      const b = sb.buffered;
      if (b.length) {
        const start = b.start(0), end = b.end(b.length - 1);
        // Drop what lies well behind the live edge (keeps memory bounded, as Safari requires).
        if (video.currentTime - start > KEEP_S * 2) { sb.remove(start, video.currentTime - KEEP_S); return; }
        const last = b.start(b.length - 1);
        if (!started) {
          // Start with a little in hand (network and decoder jitter), so the first pictures
          // are not late for their time and dropped.
          if (end - last >= START_S) {
            started = true;
            video.currentTime = last;
            video.play().catch(() => { /* autoplay refused: the user taps play */ });
          }
        } else if (video.currentTime < last || end - video.currentTime > START_S + 3) {
          // In a hole, or too far behind: jump to just before the live edge.
          video.currentTime = Math.max(last, end - START_S);
        }
        // Chase the live edge gently: a little faster while well behind the planned delay.
        video.playbackRate = end - video.currentTime > START_S + 1 ? 1.1 : 1;
      }
      if (!queue.length) return;
      const chunk = queue.length === 1 ? queue[0] : concat(queue);
      queue.length = 0; queued = 0;
      sb.appendBuffer(chunk);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!sb) {
        head = concat([head, value]);
        const codec = codecOf(head);
        if (!codec) { if (head.length > 65536) throw new Error('the stream has no H.264 track'); continue; }
        if (!MS.isTypeSupported(`video/mp4; codecs="${codec}"`)) throw new Error(`this browser cannot decode ${codec}`);
        sb = ms.addSourceBuffer(`video/mp4; codecs="${codec}"`);
        sb.mode = 'segments';
        sb.addEventListener('updateend', pump);
        sb.addEventListener('error', () => streamFailed('the browser refused the stream'));
        queue.push(head);
        queued = head.length;
      } else {
        queue.push(value);
        queued += value.length;
        // The browser stopped taking data (tab in the background, decoder stalled): start over
        // rather than hold more than a few seconds in memory.
        if (queued > 8 << 20) throw new Error('the browser fell behind');
      }
      pump();
    }
    // The device ended the stream (the picture format changed): reconnect.
    if (!ctl.signal.aborted) { stopStream(); retryTimer = setTimeout(startStream, 500); }
  }
  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  let stopArmed = 0;
  async function toggleRecording() {
    const want = !(lastStatus && lastStatus.recording);
    // Stopping a dash cam is rarely meant: the first tap asks, a second within 4 s stops.
    if (!want && Date.now() - stopArmed > 4000) {
      stopArmed = Date.now();
      recBtn.textContent = 'Tap again to stop recording';
      recBtn.classList.add('armed');
      setTimeout(() => { if (stopArmed && Date.now() - stopArmed >= 4000) { stopArmed = 0; recBtn.classList.remove('armed'); if (lastStatus) update(lastStatus); } }, 4100);
      return;
    }
    stopArmed = 0;
    recBtn.classList.remove('armed');
    recBtn.disabled = true;
    try {
      const r = await api('/api/recording', { method: 'PUT', body: { recording: want } });
      toast(r.recording ? 'Recording started' : 'Recording stopped');
      if (lastStatus) setStatus({ ...lastStatus, recording: r.recording, state: r.recording ? 'recording' : 'stopped' });
    } catch (e) { toast(e.message, true); } finally { recBtn.disabled = false; }
  }
  // "Save incident": an event protecting event_pre_s of footage before and event_post_s after.
  async function saveIncident() {
    try {
      const r = await api('/api/incidents', { method: 'POST', body: {} });
      toast(`Protected ${fmtTime(tms(r.from), { label: false })}–${fmtTime(tms(r.to))}${r.repeats ? ' (incident extended)' : ''}`);
      showLatest(r);
    } catch (e) { toast(`Could not save the incident: ${e.message}`, true); }
  }
  let latestEl = null;
  function showLatest(e) {
    if (!latestEl) return;
    if (!e) { latestEl.hidden = true; return; }
    latestEl.hidden = false;
    latestEl.replaceChildren(h('span', { text: 'Latest event: ' }),
      h('a', { href: `#events`, text: `${eventKind(e)}${e.peak_g != null ? ` ${e.peak_g.toFixed(1)} g` : ''} at ${fmtTime(tms(e.time))}` }));
  }
  // Parking mode: a toggle; while on, motion on the picture and bumps make events.
  let parkBtn = null;
  function showParking(p) {
    if (!parkBtn || !p) return;
    parkBtn.dataset.on = String(p.on);
    parkBtn.classList.toggle('on', p.on);
    parkBtn.replaceChildren(icon('shield'), p.on ? `Parked: watching (${p.motions} motion${p.motions === 1 ? '' : 's'})` : 'Parking mode');
    parkBtn.title = p.on ? 'Leave parking mode' : 'Parked: motion on the picture and bumps make events';
  }
  async function toggleParking() {
    try {
      const on = parkBtn.dataset.on !== 'true';
      showParking(await api('/api/parking', { method: 'POST', body: { on } }));
      toast(on ? 'Parking mode on: motion and bumps make events' : 'Parking mode off');
    } catch (e) { toast(`Parking mode: ${e.message}`, true); }
  }
  async function loadParking() {
    try { showParking(await api('/api/parking')); } catch { /* not available */ }
  }
  async function loadLatest() {
    try { const r = await api('/api/incidents'); showLatest(r.incidents[0]); } catch { /* events unavailable: nothing shown */ }
  }

  function build() {
    img = h('img', { class: 'frame', alt: 'Live camera view', draggable: 'false', id: 'live-img', onerror: () => streamFailed() });
    video = h('video', { class: 'frame', id: 'live-video', muted: '', playsinline: '', hidden: true, 'aria-label': 'Live camera view' });
    video.muted = true;
    video.addEventListener('error', () => { if (player) streamFailed(`the browser could not decode the stream (${(video.error && video.error.message) || 'error'})`); });
    recChip = h('span', { class: 'chip', id: 'live-rec' });
    fpsChip = h('span', { class: 'chip', id: 'live-fps', text: '– fps' });
    zoomChip = h('span', { class: 'chip', id: 'live-zoom', text: '1.0×' });
    mmCanvas = h('canvas', { width: '160', height: '90' });
    mmWin = h('div', { class: 'win' });
    minimap = h('div', { class: 'minimap', id: 'minimap', hidden: true }, mmCanvas, mmWin);
    msg = h('div', { class: 'stage-msg', hidden: true });
    const fsBtn = h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Fullscreen', title: 'Fullscreen', onclick: () => {
      if (document.fullscreenElement) document.exitFullscreen(); else stage.requestFullscreen?.().catch(() => toast('Fullscreen is not allowed here', true));
    } }, icon('full'));
    stage = h('div', { class: 'stage', id: 'live-stage' }, img, video,
      h('div', { class: 'overlay tl' }, recChip, fpsChip), minimap,
      h('div', { class: 'overlay bl' }, zoomChip), h('div', { class: 'overlay br' }, fsBtn), msg);
    stage.addEventListener('pointerdown', onDown);
    stage.addEventListener('pointermove', onMove);
    stage.addEventListener('pointerup', onUp);
    stage.addEventListener('pointercancel', onUp);
    stage.addEventListener('wheel', (e) => { e.preventDefault(); const [px, py] = frac(e); zoomAt(z * (e.deltaY < 0 ? 1.15 : 1 / 1.15), px, py); }, { passive: false });
    stage.addEventListener('dblclick', (e) => { const [px, py] = frac(e); zoomAt(z > 1.5 ? 1 : 2, px, py); });
    new ResizeObserver(() => apply()).observe(stage);

    zoomRange = h('input', { type: 'range', min: '1', max: '4', step: '0.1', value: '1', 'aria-label': 'Zoom', id: 'zoom', oninput: () => zoomAt(Number(zoomRange.value)) });
    const zoomRow = h('div', { class: 'zoom-ctl' },
      h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Zoom out', text: '−', onclick: () => zoomAt(z - 0.5) }),
      zoomRange,
      h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Zoom in', text: '+', onclick: () => zoomAt(z + 0.5) }));

    recBtn = h('button', { class: 'btn wide', type: 'button', id: 'rec-btn', onclick: toggleRecording }, 'Recording…');
    const snap = h('a', { class: 'btn', href: '/api/snapshot.jpg', download: 'snapshot.jpg', id: 'snapshot', onclick: () => {
      snap.download = `blackbox_${iso(Date.now()).replace(/[-:]/g, '').replace(/\.\d+/, '')}.jpg`;
    } }, icon('camera'), 'Snapshot');
    const actions = h('div', { class: 'live-actions' },
      recBtn,
      h('button', { class: 'btn', type: 'button', id: 'save-last', onclick: saveIncident }, icon('shield'), 'Save incident'),
      snap,
      parkBtn = h('button', { class: 'btn', type: 'button', id: 'parking', onclick: toggleParking }, icon('shield'), 'Parking mode'),
      h('button', { class: 'btn wide', type: 'button', id: 'open-controls', onclick: () => drawer.open() }, icon('sliders'), 'Camera controls'));

    facts = h('dl', { class: 'facts' });
    latestEl = h('p', { class: 'latest-event', id: 'latest-event', hidden: true });
    root.append(h('div', { class: 'live-wrap' },
      h('div', {}, stage, h('div', { class: 'spacer' }), zoomRow),
      h('div', {}, actions, latestEl, h('div', { class: 'spacer' }), h('div', { class: 'card' }, h('h3', { text: 'Camera' }), facts))));
    loadLatest();
    loadParking();
    setInterval(() => { if (current === 'live' && !document.hidden) { loadParking(); loadLatest(); } }, 10000);
    onStatus(update);
    document.addEventListener('visibilitychange', () => {
      if (current !== 'live') return;
      if (document.hidden) stopStream(); else startStream();
    });
    built = true;
  }

  function update(s) {
    if (!built) return;
    // The recording switched codec (settings changed): switch players.
    if (current === 'live' && !document.hidden && (player || img.getAttribute('src')) && !!player !== (h264() && canMse())) startStream();
    const state = s.state || (s.recording ? 'recording' : 'stopped');
    recChip.textContent = s.recording ? 'REC' : state === 'camera_lost' ? 'CAMERA LOST' : state === 'card_full' ? 'CARD FULL' : 'NOT RECORDING';
    recChip.className = s.recording ? 'chip rec' : 'chip alarm';
    fpsChip.textContent = `${typeof s.fps === 'number' ? s.fps.toFixed(1) : '–'} fps`;
    if (!(stopArmed && Date.now() - stopArmed < 4000)) {
      recBtn.replaceChildren(icon(s.recording ? 'stop' : 'rec'), s.recording ? 'Stop recording' : 'Start recording');
      recBtn.className = s.recording ? 'btn wide' : 'btn wide danger';
    }
    const f = s.format || {};
    const rows = [
      ['Camera', s.camera || '–'],
      ['Format', f.width ? `${f.pixel_format || ''} ${f.width}×${f.height} @ ${f.fps} fps` : '–'],
      ['Measured', `${typeof s.fps === 'number' ? s.fps.toFixed(1) : '–'} fps`],
      ['Frames', `${s.frames ?? '–'} (${s.dropped ?? 0} dropped)`],
      ['Viewers', `${s.live_clients ?? '–'}`],
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v, class: k === 'Camera' ? 'long' : undefined })]));
  }

  return {
    enter() {
      if (!built) build();
      apply();
      startStream();
      clearInterval(mmTimer);
      mmTimer = setInterval(drawMinimap, 500);
    },
    leave() { stopStream(); clearInterval(mmTimer); },
  };
})();

// ---------------------------------------------------------------------------------------------
// Recordings: one day as hour rows, footage green, protected amber, gaps empty.

/** Clips [from, to) ranges to [a, b) and returns them as fractions of the span. */
const spans = (ranges, a, b) => ranges
  .filter((r) => r.to > a && r.from < b)
  .map((r) => [(Math.max(r.from, a) - a) / (b - a), (Math.min(r.to, b) - a) / (b - a)]);
/** A segment's footage as ranges: its span less the stretches without frames inside it. */
const segRanges = (segs) => segs.flatMap((s) => {
  const out = [];
  let from = tms(s.start_ms ?? s.start);
  for (const g of s.gaps || []) {
    const [g0, g1] = [tms(g.from), tms(g.to)];
    if (g0 > from) out.push({ from, to: g0, seg: s });
    from = Math.max(from, g1);
  }
  out.push({ from, to: Math.max(from, tms(s.end_ms ?? s.end)), seg: s });
  return out;
});

function barFill(bar, foot, prot, a, b) {
  for (const [x0, x1] of spans(foot, a, b)) {
    const f = h('div', { class: 'f' }); f.style.left = `${x0 * 100}%`; f.style.width = `${Math.max((x1 - x0) * 100, 0.4)}%`; bar.append(f);
  }
  for (const [x0, x1] of spans(prot, a, b)) {
    const p = h('div', { class: 'p' }); p.style.left = `${x0 * 100}%`; p.style.width = `${Math.max((x1 - x0) * 100, 0.4)}%`; bar.append(p);
  }
}

views.recordings = (() => {
  const root = $('#view-recordings');
  let day = null, dateInput, body;

  function go(key) { location.hash = `recordings?day=${key}`; }
  function shift(n) { const [a] = dayRange(day); go(dayKey(a + n * 86400000 + 3600000 * (n < 0 ? 0 : 2))); }

  async function load() {
    const [a, b] = dayRange(day);
    dateInput.value = day;
    body.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
    let segs, prot;
    try {
      const [sr, pr] = await Promise.all([api(`/api/segments?from=${iso(a)}&to=${iso(b)}`), api('/api/protected').catch(() => ({ ranges: [] }))]);
      segs = sr.segments || []; prot = (pr.ranges || []).map((r) => ({ from: tms(r.from), to: tms(r.to) }));
    } catch (e) {
      body.replaceChildren(h('p', { class: 'empty err', text: `Could not load recordings: ${e.message}` }));
      return;
    }
    const foot = segRanges(segs);
    const total = foot.reduce((n, r) => n + Math.max(0, Math.min(r.to, b) - Math.max(r.from, a)), 0) / 1000;
    const protHere = spans(prot, a, b).length;
    const sum = h('p', { class: 'day-sum', id: 'day-sum' },
      h('strong', { text: `${fmtDay(a)} (${zone.label})` }), ' · ',
      segs.length ? `${fmtDur(total)} recorded in ${segs.length} segment${segs.length > 1 ? 's' : ''}` : 'no footage',
      protHere ? ` · ${protHere} protected range${protHere > 1 ? 's' : ''}` : '');
    const legend = h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'l-foot' }), 'footage'), h('span', {}, h('i', { class: 'l-prot' }), 'protected'), h('span', {}, h('i', { class: 'l-gap' }), 'no footage'), h('span', { text: 'Tap a bar to play from that moment.' }));

    const hours = h('div', { class: 'hours', id: 'hours' });
    let emptyRun = null;
    const flush = () => {
      if (!emptyRun) return;
      hours.append(h('div', { class: 'hour' }, h('span', { class: 'lbl', text: fmtTime(emptyRun[0], { secs: false, label: false }) }),
        h('div', { class: 'bar none' }, h('span', { class: 'muted', text: '' }))));
      const last = hours.lastChild.querySelector('.bar');
      last.replaceChildren(h('div', { class: 'empty-run muted', text: emptyRun[1] >= b ? (emptyRun[0] === a ? 'no footage on this day' : 'no footage for the rest of the day') : emptyRun[1] > emptyRun[0] + 3600000 ? `no footage until ${fmtTime(emptyRun[1], { secs: false })}` : 'no footage' }));
      last.firstChild.style.cssText = 'padding:6px 10px;font-size:.85rem';
      emptyRun = null;
    };
    for (let t = a; t < b; t += 3600000) {
      const t1 = Math.min(t + 3600000, b);
      if (!spans(foot, t, t1).length) { if (emptyRun) emptyRun[1] = t1; else emptyRun = [t, t1]; continue; }
      flush();
      const bar = h('div', { class: 'bar', role: 'button', tabindex: '0', 'aria-label': `Footage from ${fmtTime(t, { secs: false })}`, 'data-from': String(t) });
      for (let q = 1; q < 4; q++) { const tk = h('div', { class: 'tick' }); tk.style.left = `${q * 25}%`; bar.append(tk); }
      barFill(bar, foot, prot, t, t1);
      const pick = (x) => {
        let at = t + x * (t1 - t);
        // A tap in a gap plays the next footage in this hour (or the last before it).
        if (!foot.some((r) => at >= r.from && at < r.to)) {
          const next = foot.filter((r) => r.from >= at && r.from < t1).sort((p, q) => p.from - q.from)[0];
          const prev = foot.filter((r) => r.to <= at && r.to > t).sort((p, q) => q.to - p.to)[0];
          at = next ? next.from : prev ? Math.max(prev.from, prev.to - 5000) : at;
        }
        location.hash = `player?t=${Math.round(at)}`;
      };
      bar.addEventListener('click', (e) => { const r = bar.getBoundingClientRect(); pick((e.clientX - r.left) / r.width); });
      bar.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(0); } });
      hours.append(h('div', { class: 'hour' }, h('span', { class: 'lbl', text: fmtTime(t, { secs: false, label: false }) }), bar));
    }
    flush();

    const segItem = (s) => {
      const [s0, s1] = [tms(s.start_ms ?? s.start), tms(s.end_ms ?? s.end)];
      return h('li', {},
        h('span', { class: 'when', text: `${fmtTime(s0)} – ${fmtTime(s1, { label: false })}` }),
        s.protected ? h('span', { class: 'badge prot', text: 'PROTECTED' }) : null,
        s.open ? h('span', { class: 'badge open', text: 'RECORDING' }) : null,
        h('span', { class: 'meta', text: `${fmtDur((s.footage_ms ?? (s1 - s0)) / 1000)} · ${s.frames} frames · ${fmtBytes(s.bytes)}${(s.gaps || []).length ? ` · ${s.gaps.length} gap${s.gaps.length > 1 ? 's' : ''}` : ''}` }),
        h('a', { class: 'btn small', href: `#player?t=${s0}` }, icon('play'), 'Play'),
        h('a', { class: 'btn small ghost', href: `/api/segments/${s.id}/download`, download: '', 'aria-label': 'Download segment' }, icon('download')));
    };
    const newest = segs.slice().reverse();
    const SHOWN = 12;
    const list = h('ul', { class: 'seglist', id: 'seglist' }, newest.slice(0, SHOWN).map(segItem));
    const more = newest.length > SHOWN ? h('button', { class: 'btn small ghost', type: 'button', text: `Show all ${newest.length} segments`, onclick: () => { list.append(...newest.slice(SHOWN).map(segItem)); more.remove(); } }) : null;
    body.replaceChildren(sum, legend, hours, h('div', { class: 'spacer' }),
      segs.length ? h('div', { class: 'card' }, h('h3', { text: `Segments, newest first (${zone.label})` }), list, more) : h('p', { class: 'empty', text: 'Nothing was recorded on this day. Pick another day above.' }));
  }

  function build() {
    dateInput = h('input', { type: 'date', id: 'day', 'aria-label': 'Day', onchange: () => dateInput.value && go(dateInput.value) });
    body = h('div', {});
    root.append(h('div', { class: 'toolbar' },
      h('div', { class: 'day-nav' },
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Previous day', text: '‹', onclick: () => shift(-1) }),
        dateInput,
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Next day', text: '›', onclick: () => shift(1) })),
      h('button', { class: 'btn', type: 'button', text: 'Today', onclick: () => go(dayKey(Date.now())) }),
      h('span', { class: 'grow' }),
      zoneSwitch('zone-recordings', () => { day = null; views.recordings.enter(new URLSearchParams()); })), body);
  }

  return {
    enter(params) {
      if (!dateInput) build();
      const p = params.get('day');
      if (p && /^\d{4}-\d{2}-\d{2}$/.test(p)) day = p;
      else day = day || dayKey(lastStatus && lastStatus.newest ? tms(lastStatus.newest) : Date.now());
      load();
    },
  };
})();

// ---------------------------------------------------------------------------------------------
// Player. H.264 footage plays in a plain <video> over the on-the-fly export of the timeline
// window (/api/export.mp4, seeking by Range), its time mapped back to UTC with the export's
// clock points (/api/export.json?clock=1). Motion JPEG footage (older recordings, or
// video_codec=mjpeg) is shown frame by frame from /api/frame, paced by X-Timestamp.

views.player = (() => {
  const root = $('#view-player');
  let built = false, canvas, video, timeChip, speedChip, msg, range, trackEl, labels, playBtn, info, dlBtn, exportBtn, protBtn, unprotBtn, winSeg;
  // The <video> source: the window it covers, its clock points [[s, utc_ms]...], or null (MJPEG).
  let vsrc = null, vlastTs = null;
  let cur = null;               // {ts, seq, next, prev}
  let playing = false, speed = 1, token = 0, anchorWall = 0, anchorTs = 0, interval = 1000 / 30;
  let win = { from: 0, to: 0, len: 10 * 60000 }, segs = [], prot = [];
  let scrubbing = false, scrubBusy = false, scrubWanted = null;

  /** Fetches and decodes one frame. null when there is none (404). */
  async function fetchFrame(query) {
    let r;
    try { r = await fetch(`/api/frame?${query}`, { credentials: 'same-origin', cache: 'no-store' }); } catch { throw new ApiError(0, 'The device did not answer.'); }
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
    msg.hidden = true;
    timeChip.textContent = fmtTime(cur.ts, { date: true, frac: true });
    timeChip.dataset.ts = String(cur.ts);
    checkExport();
    if (!scrubbing) {
      if (cur.ts > win.to || cur.ts < win.from) setWindow(cur.ts);
      range.value = String(Math.round((cur.ts - win.from) / 100));
    }
    const seg = segs.find((s) => cur.ts >= s.from && (cur.ts <= s.to || s.seg.open));
    info.textContent = `Frame ${cur.seq}` + (seg ? ` · segment ${fmtTime(seg.from)} – ${fmtTime(seg.to, { label: false })}` : '');
    dlBtn.hidden = !seg;
    if (seg) { dlBtn.href = `/api/segments/${seg.seg.id}/download`; }
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
    try { x = await api(`/api/export.json?${q}&clock=1`); } catch { x = null; }
    if (!x || x.codec !== 'h264' || !x.clock || !x.clock.length) { vsrc = null; video.hidden = true; canvas.hidden = false; return false; }
    if (vsrc && vsrc.q === q) return true;
    vsrc = { q, from: win.from, to: win.to, clock: x.clock, end: tms(x.end) };
    video.hidden = false; canvas.hidden = true;
    video.src = `/api/export.mp4?${q}`;
    await new Promise((res) => { video.addEventListener('loadedmetadata', res, { once: true }); video.addEventListener('error', res, { once: true }); });
    if (video.error) { showMsg(`This browser cannot play the recording (${video.error.message || video.error.code}). Download it instead.`); return false; }
    return true;
  }
  /** The <video>'s picture changed: the time chip, the scrub bar, the segment line. */
  function videoShown() {
    if (!vsrc) return;
    const ts = utcAt(video.currentTime);
    if (ts === null) return;
    if (playing && vlastTs !== null && ts - vlastTs > 2000 * Math.max(1, speed)) toast(`Skipped ${fmtDur((ts - vlastTs) / 1000)} without footage`);
    vlastTs = ts;
    cur = { ts, seq: null, next: null, prev: null };
    msg.hidden = true;
    timeChip.textContent = fmtTime(ts, { date: true, frac: true });
    timeChip.dataset.ts = String(ts);
    checkExport();
    if (!scrubbing) range.value = String(Math.round((ts - win.from) / 100));
    const seg = segs.find((sg) => ts >= sg.from && (ts <= sg.to || sg.seg.open));
    info.textContent = (seg ? `Segment ${fmtTime(seg.from)} – ${fmtTime(seg.to, { label: false })}` : 'Recording') + ' · H.264';
    dlBtn.hidden = !seg;
    if (seg) dlBtn.href = `/api/segments/${seg.seg.id}/download`;
  }
  function onVideoFrame() {
    videoShown();
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
      if (!f && cur.next !== null) f = await fetchFrame(`seq=${cur.next}`).catch(() => null);
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
    }
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
      api(`/api/segments?from=${iso(win.from)}&to=${iso(win.to)}`).catch(() => ({ segments: [] })),
      api('/api/protected').catch(() => ({ ranges: [] })),
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
      await api(un ? '/api/unprotect' : '/api/protect', { method: 'POST', body: { from: iso(win.from), to: iso(win.to) } });
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
    timeChip = h('span', { class: 'chip time', id: 'player-time', text: '–' });
    speedChip = h('span', { class: 'chip', text: '1×' });
    msg = h('div', { class: 'stage-msg', hidden: true });
    const stage = h('div', { class: 'stage player-stage', id: 'player-stage' }, canvas, video, h('div', { class: 'overlay bl' }, timeChip), h('div', { class: 'overlay tr' }, speedChip), msg);
    stage.addEventListener('click', () => (playing ? pause() : play()));

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
    dlBtn = h('a', { class: 'btn', href: '#', download: '', id: 'download-seg', hidden: true }, icon('download'), 'Download segment');
    exportBtn = h('a', { class: 'btn', href: '#export', id: 'export-clip', hidden: true, title: 'Export 30 s either side of this frame as MP4' }, icon('download'), 'Export clip (MP4)…');
    protBtn = h('button', { class: 'btn', type: 'button', id: 'protect', onclick: () => protect(false) }, icon('shield'), 'Protect');
    unprotBtn = h('button', { class: 'btn ghost', type: 'button', id: 'unprotect', hidden: true, onclick: () => protect(true) }, 'Unprotect');
    const back = h('a', { class: 'btn ghost', href: '#recordings', id: 'player-back', onclick: (e) => { e.preventDefault(); location.hash = cur ? `recordings?day=${dayKey(cur.ts)}` : 'recordings'; } }, '‹ Day');

    root.append(h('div', { class: 'toolbar' }, back, h('span', { class: 'grow' }), zoneSwitch('zone-player', () => { if (cur) { timeChip.textContent = fmtTime(cur.ts, { date: true, frac: true }); setWindow(cur.ts); } })),
      stage,
      h('div', { class: 'scrub' }, trackEl, range), labels,
      h('div', { class: 'transport' },
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Back 10 seconds', onclick: jump(-10000) }, icon('back')),
        playBtn,
        h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Forward 10 seconds', onclick: jump(10000) }, icon('fwd')),
        speeds, lens),
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
      cur = null; vsrc = null; video.removeAttribute('src');
      showMsg('Loading…');
      await setWindow(t);
      if (await seek(t)) play();
    },
    leave() { pause(); },
  };
})();

// ---------------------------------------------------------------------------------------------
// Export: pick a range (presets, the timeline, or from/to fields), see what the MP4 will be
// (/api/export.json), download it with the browser's own download manager (a plain link to
// /api/export.mp4; the session cookie authenticates it). #export?from=MS&to=MS opens a range.

/** "2026-11-22" and "05:50:10" for date and time inputs, in the chosen zone. */
const fieldDate = (ms) => { const p = parts(ms); return `${p.y}-${pad(p.mo + 1)}-${pad(p.d)}`; };
const fieldTime = (ms) => { const p = parts(ms); return `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`; };
/** The instant a date and a time input name, in the chosen zone; null when incomplete. */
function fieldsToMs(date, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date), t = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(time);
  if (!d || !t) return null;
  const [y, mo, da, hh, mi, ss] = [d[1], d[2], d[3], t[1], t[2], t[3] || '0'].map(Number);
  return zone.utc ? Date.UTC(y, mo - 1, da, hh, mi, ss) : new Date(y, mo - 1, da, hh, mi, ss).getTime();
}

views.export = (() => {
  const root = $('#view-export');
  const WINDOWS = [['day', 'Day'], [3600000, '1 h'], [600000, '10 min'], [120000, '2 min']];
  const PRESETS = [[30, 'Last 30 s'], [60, 'Last 1 min'], [120, 'Last 2 min'], [300, 'Last 5 min'], [900, 'Last 15 min'], [3600, 'Last hour']];
  let built = false, el = {};
  let sel = null;                 // {from, to}: Unix ms, `to` excluded (as the API)
  let pending = null;             // the first tap of "tap the start, then the end"
  let win = { len: 600000, from: 0, to: 0 }, winSegs = [], winProt = [], winSeq = 0;
  let checkTimer = 0, checkSeq = 0, checking = false, last = null; // last: {info, gaps, q} or {error}
  let drag = null;

  const newest = () => (lastStatus && lastStatus.newest ? tms(lastStatus.newest) : null);
  const query = () => `from=${encodeURIComponent(iso(sel.from))}&to=${encodeURIComponent(iso(sel.to))}`;

  // --- the timeline window -------------------------------------------------------------------
  function place(len, center) {
    win.len = len;
    if (len === 'day') {
      [win.from, win.to] = dayRange(dayKey(center));
    } else {
      win.from = Math.floor((center - len / 2) / 1000) * 1000;
      win.to = win.from + len;
    }
  }
  /** Makes the selection visible: the smallest window it fits in, not reaching far past the newest footage. */
  function fit() {
    if (!sel || (sel.from >= win.from && sel.to <= win.to)) return false;
    const L = sel.to - sel.from;
    const len = [120000, 600000, 3600000].find((l) => L <= 0.8 * l) ?? 'day';
    if (len === 'day') { place('day', sel.from); return true; }
    let from = (sel.from + sel.to) / 2 - len / 2;
    const n = newest();
    if (n !== null) from = Math.min(from, Math.max(n - 0.9 * len, sel.to - 0.95 * len));
    place(len, from + len / 2);
    return true;
  }
  function shiftWindow(dir) {
    if (win.len === 'day') place('day', dir < 0 ? win.from - 3600000 : win.to + 3600000);
    else place(win.len, (win.from + win.to) / 2 + (dir * win.len) / 2);
    loadWindow();
  }
  function setLen(len) {
    const c = sel ? (sel.from + sel.to) / 2 : (win.from + win.to) / 2;
    place(len, c);
    loadWindow();
  }

  async function loadWindow() {
    const my = ++winSeq;
    drawStrip();
    const [sr, pr] = await Promise.all([
      api(`/api/segments?from=${iso(win.from)}&to=${iso(win.to)}`).catch(() => ({ segments: [] })),
      api('/api/protected').catch(() => ({ ranges: [] })),
    ]);
    if (my !== winSeq) return;
    winSegs = segRanges(sr.segments || []);
    winProt = (pr.ranges || []).map((r) => ({ from: tms(r.from), to: tms(r.to) }));
    drawStrip();
  }

  const frac = (t) => (t - win.from) / (win.to - win.from);
  function drawStrip() {
    const { from: a, to: b } = win;
    el.strip.dataset.from = String(a);
    el.strip.dataset.to = String(b);
    el.layer.replaceChildren();
    // Ticks at round times: about five across the strip.
    const span = b - a;
    const step = [10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3].find((s) => span / s <= (el.strip.clientWidth > 560 ? 8 : 5)) || 6 * 3600e3;
    const off = zone.utc ? 0 : new Date(a).getTimezoneOffset() * 60000;
    const ticks = [];
    for (let t = Math.ceil((a - off) / step) * step + off; t < b; t += step) if (t > a) ticks.push(t);
    for (const t of ticks) { const k = h('div', { class: 'tick' }); k.style.left = `${frac(t) * 100}%`; el.layer.append(k); }
    barFill(el.layer, winSegs, winProt, a, b);
    el.ticks.replaceChildren(...ticks.filter((t) => frac(t) > 0.07 && frac(t) < 0.93).map((t) => { const s = h('span', { text: fmtTime(t, { secs: step < 60000, label: false }) }); s.style.left = `${frac(t) * 100}%`; return s; }));
    const sameDay = dayKey(a) === dayKey(b - 1);
    el.winLabel.textContent = win.len === 'day'
      ? `${fmtDay(a)} (${zone.label})`
      : `${fmtDay(a)}, ${fmtTime(a, { label: false, secs: false })} – ${sameDay ? '' : fmtDay(b) + ', '}${fmtTime(b, { secs: false })}`;
    for (const btn of el.lens.children) btn.classList.toggle('on', String(win.len) === btn.dataset.len);
    drawSel();
  }
  function drawSel() {
    const show = sel && sel.to > win.from && sel.from < win.to;
    el.sel.hidden = !show;
    if (show) {
      const x0 = clamp(frac(sel.from), 0, 1), x1 = clamp(frac(sel.to), 0, 1);
      el.sel.style.left = `${x0 * 100}%`;
      el.sel.style.width = `${Math.max(x1 - x0, 0.004) * 100}%`;
      el.sel.classList.toggle('cut-l', sel.from < win.from);
      el.sel.classList.toggle('cut-r', sel.to > win.to);
    }
    el.pend.hidden = pending === null || pending < win.from || pending > win.to;
    if (!el.pend.hidden) el.pend.style.left = `${frac(pending) * 100}%`;
    el.hint.textContent = pending !== null
      ? `Start: ${fmtTime(pending)}. Now tap where the clip ends.`
      : 'Drag across the timeline to select, or tap the start and then the end. Drag an edge to adjust.';
    el.hint.classList.toggle('pending', pending !== null);
  }

  // --- pointer: drag to select, tap start then end, drag an edge -----------------------------
  function timeAt(clientX) {
    const r = el.strip.getBoundingClientRect();
    const x = clamp((clientX - r.left) / r.width, 0, 1);
    return Math.round((win.from + x * (win.to - win.from)) / 1000) * 1000;
  }
  function onDown(e) {
    if (e.button > 0 || drag) return;
    let mode = 'new';
    if (sel && !el.sel.hidden) {
      const r = el.strip.getBoundingClientRect();
      const px = (t) => r.left + clamp(frac(t), 0, 1) * r.width;
      const dF = Math.abs(e.clientX - px(sel.from)), dT = Math.abs(e.clientX - px(sel.to));
      if (Math.min(dF, dT) <= (e.pointerType === 'mouse' ? 8 : 20)) mode = dF < dT ? 'from' : 'to';
    }
    drag = { id: e.pointerId, x0: e.clientX, t0: timeAt(e.clientX), mode, moved: false };
    el.strip.setPointerCapture?.(e.pointerId);
  }
  function onMove(e) {
    if (!drag || e.pointerId !== drag.id) return;
    if (!drag.moved && Math.abs(e.clientX - drag.x0) < 8) return;
    drag.moved = true;
    pending = null;
    const t = timeAt(e.clientX);
    let a, b;
    if (drag.mode === 'from') [a, b] = t < sel.to ? [t, sel.to] : [sel.to - 1000, sel.to];
    else if (drag.mode === 'to') [a, b] = t > sel.from ? [sel.from, t] : [sel.from, sel.from + 1000];
    else [a, b] = [Math.min(drag.t0, t), Math.max(drag.t0, t)];
    setSel(a, b === a ? a + 1000 : b, { from: 'timeline' });
  }
  function onUp(e) {
    if (!drag || e.pointerId !== drag.id) return;
    const d = drag;
    drag = null;
    if (d.moved || e.type === 'pointercancel') return;
    if (pending === null) { pending = d.t0; drawSel(); return; }
    const [a, b] = [Math.min(pending, d.t0), Math.max(pending, d.t0)];
    pending = null;
    setSel(a, b === a ? a + 1000 : b, { from: 'timeline' });
  }

  // --- the selection -------------------------------------------------------------------------
  /** Sets the range. `from`: what set it ('fields' leaves the fields alone; 'timeline' keeps the window). */
  let lastPreset = 0;              // the quick pick that made `sel` (re-anchored to now on every visit)
  function setSel(a, b, { from = 'code' } = {}) {
    if (from !== 'preset') lastPreset = 0;
    sel = { from: a, to: b };
    if (from !== 'fields') writeFields();
    el.fieldErr.hidden = true;
    el.len.textContent = `Length ${fmtDur((b - a) / 1000)}`;
    if (current === 'export') history.replaceState(null, '', `#export?from=${a}&to=${b}`);
    if (from !== 'timeline' && fit()) loadWindow(); else drawSel();
    scheduleCheck();
  }
  function writeFields() {
    if (!sel) return;
    el.fromDate.value = fieldDate(sel.from); el.fromTime.value = fieldTime(sel.from);
    el.toDate.value = fieldDate(sel.to); el.toTime.value = fieldTime(sel.to);
  }
  function readFields() {
    const a = fieldsToMs(el.fromDate.value, el.fromTime.value), b = fieldsToMs(el.toDate.value, el.toTime.value);
    const bad = (msg) => { el.fieldErr.textContent = msg; el.fieldErr.hidden = false; blocked(msg); };
    if (a === null || b === null) return bad('Enter a date and a time for both the start and the end.');
    if (b <= a) return bad('The end must be after the start.');
    pending = null;
    setSel(a, b, { from: 'fields' });
  }
  function zoneLabels() {
    for (const s of root.querySelectorAll('.zone-name')) s.textContent = zone.label;
  }

  async function preset(seconds) {
    let n = newest();
    if (n === null) {
      try { setStatus(await api('/api/status')); n = newest(); } catch (e) { toast(e.message, true); return; }
    }
    if (n === null) { toast('Nothing has been recorded yet.', true); return; }
    pending = null;
    // Whole seconds up to the newest stored frame: a range whose footage is all on the card.
    const to = Math.floor(n / 1000) * 1000;
    setSel(to - seconds * 1000, to, { from: 'preset' });
    lastPreset = seconds;
  }
  async function wholeSegment() {
    pending = null;
    const n = newest();
    const at = sel ? sel.from : n;
    if (at === null) { toast('Nothing has been recorded yet.', true); return; }
    try {
      // The segment holding the start of the range (or the first one after it), else the newest.
      let segs = (await api(`/api/segments?from=${iso(at)}&to=${iso(at + 6 * 3600000)}`)).segments || [];
      if (!segs.length) segs = ((await api(`/api/segments?from=${iso((n ?? at) - 3600000)}`)).segments || []).slice(-1);
      const s = segs[0];
      if (!s) { toast('No segment there.', true); return; }
      setSel(tms(s.start_ms ?? s.start), tms(s.end_ms ?? s.end) + 1);
    } catch (e) { toast(e.message, true); }
  }

  // --- what the export will be ---------------------------------------------------------------
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkSeq++;
    checking = true;
    el.summary.classList.add('stale');
    el.state.textContent = 'Checking the footage…'; el.state.hidden = false;
    el.barText.textContent = 'Checking…';
    setDownload(null);
    checkTimer = setTimeout(check, 350);
  }
  function blocked(msg) {
    clearTimeout(checkTimer);
    checkSeq++;
    checking = false;
    last = { error: { status: 0, message: msg, local: true } };
    render();
  }
  async function check() {
    const my = checkSeq;
    const q = query();
    try {
      const [info, sr] = await Promise.all([api(`/api/export.json?${q}`), api(`/api/segments?${q}`).catch(() => null)]);
      if (my !== checkSeq) return;
      last = { info, gaps: sr ? (sr.gaps || []).map((g) => ({ from: tms(g.from), to: tms(g.to) })) : null, q };
    } catch (e) {
      if (my !== checkSeq) return;
      last = { error: e };
    }
    checking = false;
    render();
  }
  function setDownload(info, q) {
    for (const a of [el.dl, el.barDl]) {
      if (info) {
        a.href = `/api/export.mp4?${q}`;
        a.download = info.file_name;
        a.removeAttribute('aria-disabled');
        a.classList.remove('off');
      } else {
        a.removeAttribute('href');
        a.setAttribute('aria-disabled', 'true');
        a.classList.add('off');
      }
    }
  }
  function render() {
    if (checking) return; // the answer for the range on screen comes shortly
    el.summary.classList.remove('stale');
    const set = (e, text, data) => { e.textContent = text; if (data) Object.assign(e.dataset, data); };
    if (!last || !sel) return;
    if (last.error) {
      const e = last.error;
      el.ok.hidden = true; el.err.hidden = false;
      const head = e.local ? 'Check the range'
        : e.status === 404 ? 'No footage in this range'
        : e.status === 400 ? 'The dash cam refused this range'
        : e.status === 0 ? 'The dash cam did not answer'
        : 'Could not prepare the export';
      set(el.errHead, head);
      set(el.errMsg, e.local ? e.message : e.status === 404 ? `The dash cam says: ${e.message}.` : e.message);
      el.errHint.hidden = e.status !== 404;
      el.state.hidden = true;
      el.barText.textContent = head;
      setDownload(null);
      return;
    }
    const { info, gaps } = last;
    el.ok.hidden = false; el.err.hidden = true;
    const L = (sel.to - sel.from) / 1000;
    set(el.size, fmtBytes(info.bytes), { bytes: String(info.bytes) });
    set(el.dur, fmtDur(info.duration_s), { seconds: String(info.duration_s) });
    set(el.frames, info.frames.toLocaleString('en-US'), { frames: String(info.frames) });
    const s0 = tms(info.start), s1 = tms(info.end);
    const cuts = (gaps || []).filter((g) => g.to > s0 && g.from < s1);
    const missing = Math.max(0, L - info.duration_s);
    set(el.cover, missing < 1.5 ? `all ${fmtDur(L)} of the range` : `${fmtDur(info.duration_s)} of the ${fmtDur(L)} range`);
    el.cover.className = missing < 1.5 ? 'ok' : '';
    set(el.gaps, gaps === null ? '–' : cuts.length ? `${cuts.length} (${fmtDur(cuts.reduce((n, g) => n + (Math.min(g.to, s1) - Math.max(g.from, s0)), 0) / 1000)} without footage); the video cuts across ${cuts.length > 1 ? 'them' : 'it'}` : 'none', { gaps: String(cuts.length) });
    const when = (t) => { const p = parts(t); return `${p.d} ${MONTHS[p.mo]} ${p.y}, ${fmtTime(t)}`; };
    set(el.first, when(s0));
    set(el.lastFrame, when(s1));
    set(el.file, info.file_name);
    el.skipped.hidden = !info.skipped;
    el.skipped.textContent = `${info.skipped} damaged frame${info.skipped > 1 ? 's' : ''} left out (they failed their checksum).`;
    el.big.hidden = info.bytes < 1024 ** 3;
    el.state.textContent = 'Ready to download'; el.state.hidden = false;
    el.barText.replaceChildren(h('strong', { text: fmtBytes(info.bytes) }), ` · ${fmtDur(info.duration_s)}`);
    setDownload(info, last.q);
  }

  // --- the page ------------------------------------------------------------------------------
  function build() {
    const presets = h('div', { class: 'presets', id: 'export-presets' },
      PRESETS.map(([s, t]) => h('button', { class: 'btn small', type: 'button', 'data-seconds': String(s), text: t, onclick: () => preset(s) })),
      h('button', { class: 'btn small', type: 'button', id: 'export-segment', text: 'Segment', 'aria-label': 'This segment', title: 'The whole segment where the range starts', onclick: wholeSegment }));

    el.layer = h('div', { class: 'xlayer' });
    el.sel = h('div', { class: 'xsel', id: 'export-sel', hidden: true }, h('span', { class: 'grip l' }), h('span', { class: 'grip r' }));
    el.pend = h('div', { class: 'xpend', hidden: true });
    el.strip = h('div', { class: 'xstrip', id: 'export-strip', role: 'group', 'aria-label': 'Timeline: drag across it, or tap the start and then the end, to pick the clip' }, el.layer, el.sel, el.pend);
    el.strip.addEventListener('pointerdown', onDown);
    el.strip.addEventListener('pointermove', onMove);
    el.strip.addEventListener('pointerup', onUp);
    el.strip.addEventListener('pointercancel', onUp);
    el.ticks = h('div', { class: 'xticks', 'aria-hidden': 'true' });
    el.winLabel = h('strong', { class: 'xwin', id: 'export-window' });
    el.lens = h('div', { class: 'seg', role: 'group', 'aria-label': 'Timeline span', id: 'export-lens' },
      WINDOWS.map(([len, t]) => h('button', { type: 'button', 'data-len': String(len), text: t, onclick: () => setLen(len) })));
    el.hint = h('p', { class: 'xhint', id: 'export-hint' });

    const dateIn = (id, label) => h('input', { type: 'date', id, 'aria-label': label, oninput: readFields });
    const timeIn = (id, label) => h('input', { type: 'time', id, step: '1', 'aria-label': label, oninput: readFields });
    el.fromDate = dateIn('export-from-date', 'Start date'); el.fromTime = timeIn('export-from-time', 'Start time');
    el.toDate = dateIn('export-to-date', 'End date'); el.toTime = timeIn('export-to-time', 'End time');
    el.fieldErr = h('p', { class: 'xferr', id: 'export-field-err', role: 'alert', hidden: true });
    el.len = h('span', { class: 'muted', id: 'export-len' });
    const zoneName = () => h('span', { class: 'zone-name', text: zone.label });
    const fields = h('div', { class: 'xfields' },
      h('div', { class: 'xfield' }, h('label', { for: 'export-from-date' }, 'From ', h('span', { class: 'zl' }, zoneName())), h('div', { class: 'xdt' }, el.fromDate, el.fromTime)),
      h('div', { class: 'xfield' }, h('label', { for: 'export-to-date' }, 'To ', h('span', { class: 'zl' }, zoneName())), h('div', { class: 'xdt' }, el.toDate, el.toTime)));

    // The summary.
    const fact = (k, id) => { const dd = h('dd', { id }); return [[h('dt', { text: k }), dd], dd]; };
    const rows = [];
    const add = (k, id) => { const [pair, dd] = fact(k, id); rows.push(...pair); return dd; };
    el.frames = add('Frames', 'export-frames');
    el.cover = add('Footage', 'export-cover');
    el.gaps = add('Gaps', 'export-gaps');
    el.first = add('First frame', 'export-first');
    el.lastFrame = add('Last frame', 'export-last');
    el.size = h('div', { class: 'big', id: 'export-size', text: '–' });
    el.dur = h('div', { class: 'big', id: 'export-duration', text: '–' });
    el.file = h('div', { class: 'mono xfile', id: 'export-file' });
    el.skipped = h('p', { class: 'err', id: 'export-skipped', hidden: true });
    el.big = h('p', { class: 'muted', hidden: true, text: 'A large file: over the dash cam\u2019s Wi-Fi it takes a while. A shorter range downloads faster.' });
    el.ok = h('div', { id: 'export-ok', hidden: true },
      h('div', { class: 'xbig' }, h('div', {}, h('span', { class: 'muted', text: 'Size' }), el.size), h('div', {}, h('span', { class: 'muted', text: 'Duration' }), el.dur)),
      h('dl', { class: 'facts' }, rows),
      h('div', { class: 'xfilerow' }, h('span', { class: 'muted', text: 'File' }), el.file), el.skipped, el.big);
    el.errHead = h('strong', { id: 'export-error-head' });
    el.errMsg = h('p', { id: 'export-error' });
    el.errHint = h('p', { class: 'muted', text: 'Pick a range over the green footage on the timeline, or use one of the quick picks.' });
    el.err = h('div', { class: 'xerr', id: 'export-err', role: 'alert', hidden: true }, el.errHead, el.errMsg, el.errHint);
    el.state = h('p', { class: 'muted xstate', id: 'export-state', role: 'status', text: 'Pick a range.' });
    el.dl = h('a', { class: 'btn primary wide off', id: 'export-download', 'aria-disabled': 'true' }, icon('download'), 'Download MP4');
    el.summary = h('div', { class: 'card xsummary', id: 'export-summary' }, h('h3', { text: 'The clip' }), el.ok, el.err, el.state, el.dl,
      h('p', { class: 'muted xnote', text: 'Your browser shows the download\u2019s progress. The MP4 plays in VLC, mpv and QuickTime, with the recording time as subtitles.' }));

    el.barText = h('span', { class: 'xbar-text', id: 'export-bar-text', text: 'Pick a range' });
    el.barDl = h('a', { class: 'btn primary off', id: 'export-bar-download', 'aria-disabled': 'true', 'aria-label': 'Download MP4' }, icon('download'), 'Download');
    const bar = h('div', { class: 'xbar' }, el.barText, el.barDl);
    for (const a of [el.dl, el.barDl]) a.addEventListener('click', (e) => { if (a.classList.contains('off')) e.preventDefault(); else toast('Download started: your browser shows its progress.'); });

    root.append(
      h('div', { class: 'toolbar' }, h('h2', { text: 'Export a clip', class: 'grow' }),
        zoneSwitch('zone-export', () => { zoneLabels(); writeFields(); if (win.len === 'day') place('day', sel ? sel.from : win.from); loadWindow(); render(); })),
      h('div', { class: 'xgrid' },
        h('div', {},
          h('div', { class: 'card' }, h('h3', { text: 'Quick pick' }), presets),
          h('div', { class: 'card' },
            h('div', { class: 'xhead' }, h('h3', { text: 'Timeline' }), el.lens),
            h('div', { class: 'xnav' },
              h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Earlier', text: '‹', onclick: () => shiftWindow(-1) }),
              el.winLabel,
              h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Later', text: '›', onclick: () => shiftWindow(1) })),
            el.strip, el.ticks,
            h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'l-foot' }), 'footage'), h('span', {}, h('i', { class: 'l-prot' }), 'protected'), h('span', {}, h('i', { class: 'l-sel' }), 'your clip')),
            el.hint),
          h('div', { class: 'card' }, h('div', { class: 'xhead' }, h('h3', { text: 'Range' }), el.len), fields, el.fieldErr)),
        el.summary),
      bar);
    zoneLabels();
    built = true;
  }

  return {
    async enter(params) {
      if (!built) build();
      const a = Number(params.get('from')), b = Number(params.get('to'));
      if (params.has('from') && params.has('to') && Number.isFinite(a) && Number.isFinite(b) && b > a) {
        pending = null;
        setSel(a, b);
      } else if (lastPreset) {
        // "Last N" means the last N now, not when it was picked.
        await preset(lastPreset);
      } else if (sel) {
        history.replaceState(null, '', `#export?from=${sel.from}&to=${sel.to}`);
        loadWindow();
      } else {
        await preset(60); // fits the timeline window to it
        if (!sel) { place(600000, newest() ?? Date.now()); loadWindow(); }
      }
    },
  };
})();

// ---------------------------------------------------------------------------------------------
// Settings: GET/PUT /api/config, grouped, errors next to their field.

const CONFIG_FORM = [
  ['Video', [
    ['video_res_width', 'Width', { unit: 'px', min: 16, max: 7680 }],
    ['video_res_height', 'Height', { unit: 'px', min: 16, max: 4320 }],
    ['video_fps', 'Frame rate', { unit: 'fps', min: 1, max: 120 }],
    ['mjpeg_quality', 'JPEG quality', { min: 1, max: 100, help: 'For frames blackbox encodes itself (raw cameras and the test pattern).' }],
    ['embed_timestamp', 'Burn the UTC time into frames', {}],
    ['camera_device', 'Camera device', { help: 'For example /dev/video0. Empty: find one automatically.' }],
  ]],
  ['Storage', [
    ['storage_cap_gb', 'Storage cap', { unit: 'GiB', min: 0.01, max: 65536, step: 0.01, help: 'Most space recordings may use. The oldest unprotected footage makes room.' }],
    ['min_free_mb', 'Keep free', { unit: 'MiB', min: 0, max: 1048576, help: 'Free space to leave on the card.' }],
    ['protected_cap_percent', 'Protected share', { unit: '%', min: 0, max: 100, help: 'Share of the cap that protected footage may use.' }],
    ['segment_length_s', 'Segment length', { unit: 's', min: 1, max: 3600 }],
  ]],
  ['Power-cut safety', [
    ['commit_interval_ms', 'Sync interval', { unit: 'ms', min: 10, max: 60000, help: 'Longest time between syncs: the most video a power cut can take.' }],
    ['commit_frames', 'Sync after frames', { unit: 'frames', min: 1, max: 100000 }],
  ]],
  ['Network', [
    ['listen', 'Dashboard address', { help: 'IP:PORT. The appliance uses 0.0.0.0:80.' }],
    ['port', 'Port override', { min: 0, max: 65535, help: 'Nonzero replaces the port in the address.' }],
    ['max_live_clients', 'Live viewers at once', { min: 1, max: 64 }],
  ]],
];

views.settings = (() => {
  const root = $('#view-settings');
  let form, foot, msgEl, saveBtn, loaded = null;
  const fields = new Map(); // key -> {input, type, wrap, err}

  function fieldFor(key, label, o, value) {
    const type = typeof value === 'boolean' ? 'bool' : typeof value === 'number' ? 'num' : 'text';
    const id = `cfg-${key}`;
    const err = h('div', { class: 'ferr', id: `${id}-err`, role: 'alert', hidden: true });
    let input, row;
    if (type === 'bool') {
      input = h('input', { type: 'checkbox', id, name: key, role: 'switch' });
      input.checked = value;
      row = h('div', { class: 'inrow' }, h('label', { for: id, text: label, class: 'grow' }), h('span', { class: 'switch' }, input, h('span')));
      row.firstChild.style.flex = '1';
    } else {
      input = h('input', { type: type === 'num' ? 'number' : 'text', id, name: key, inputmode: type === 'num' ? (o.step && o.step < 1 ? 'decimal' : 'numeric') : undefined,
        min: o.min !== undefined ? String(o.min) : undefined, max: o.max !== undefined ? String(o.max) : undefined, step: type === 'num' ? String(o.step || 'any') : undefined,
        autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': `${id}-err` });
      input.value = String(value);
      row = h('div', {}, h('label', { for: id, text: label }), h('div', { class: 'inrow' }, input, o.unit ? h('span', { class: 'unit', text: o.unit }) : null));
    }
    const wrap = h('div', { class: 'field', 'data-key': key }, row, o.help ? h('div', { class: 'help', text: o.help }) : null, err);
    input.addEventListener('input', () => { clearError(key); dirty(); });
    fields.set(key, { input, type, wrap, err });
    return wrap;
  }
  function valueOf(key) {
    const f = fields.get(key);
    if (f.type === 'bool') return f.input.checked;
    if (f.type === 'num') return f.input.value.trim() === '' ? NaN : Number(f.input.value);
    return f.input.value;
  }
  function changed() {
    const out = {};
    for (const key of fields.keys()) {
      const v = valueOf(key);
      if (!(typeof v === 'number' && typeof loaded[key] === 'number' ? v === loaded[key] : v === loaded[key])) out[key] = v;
    }
    return out;
  }
  function dirty() {
    const n = Object.keys(changed()).length;
    saveBtn.disabled = n === 0;
    if (n) { msgEl.textContent = `${n} unsaved change${n > 1 ? 's' : ''}`; msgEl.className = 'msg muted'; }
  }
  function clearError(key) { const f = fields.get(key); if (f) { f.err.hidden = true; f.wrap.classList.remove('bad'); } }
  function showError(key, text) {
    const f = fields.get(key);
    if (!f) { msgEl.textContent = key ? `${key}: ${text}` : text; msgEl.className = 'msg err'; return; }
    f.err.textContent = text; f.err.hidden = false; f.wrap.classList.add('bad');
    f.input.scrollIntoView({ block: 'center', behavior: 'smooth' });
    f.input.focus({ preventScroll: true });
    msgEl.textContent = 'Not saved: fix the marked field.'; msgEl.className = 'msg err';
  }

  async function save(e) {
    e.preventDefault();
    const body = changed();
    for (const k of fields.keys()) clearError(k);
    for (const [k, v] of Object.entries(body)) if (typeof v === 'number' && Number.isNaN(v)) return showError(k, 'Enter a number.');
    if (!Object.keys(body).length) { msgEl.textContent = 'Nothing changed.'; msgEl.className = 'msg muted'; return; }
    saveBtn.disabled = true;
    msgEl.textContent = 'Saving…'; msgEl.className = 'msg muted';
    try {
      const r = await api('/api/config', { method: 'PUT', body });
      render(r.config || { ...loaded, ...body });
      const later = (r.next_start || []).length ? ` ${r.next_start.join(' and ')}: at the next start of blackbox.` : '';
      msgEl.textContent = (r.applied === 'restarted' ? 'Saved. The recorder restarted to apply it.' : 'Saved and applied.') + later;
      msgEl.className = 'msg ok';
      msgEl.id = 'settings-msg';
    } catch (err) {
      saveBtn.disabled = false;
      if (err.status === 400) showError(err.key, err.message);
      else { msgEl.textContent = `Not saved: ${err.message}`; msgEl.className = 'msg err'; }
    }
  }

  function render(cfg) {
    loaded = cfg;
    fields.clear();
    const known = new Set();
    const groups = CONFIG_FORM.map(([title, items]) => {
      const rows = items.filter(([k]) => k in cfg).map(([k, label, o]) => { known.add(k); return fieldFor(k, label, o, cfg[k]); });
      return rows.length ? h('fieldset', {}, h('legend', { text: title }), rows) : null;
    });
    const other = Object.keys(cfg).filter((k) => !known.has(k) && ['string', 'number', 'boolean'].includes(typeof cfg[k]));
    if (other.length) groups.push(h('fieldset', {}, h('legend', { text: 'Other' }), other.map((k) => fieldFor(k, k, {}, cfg[k]))));
    form.replaceChildren(h('div', { class: 'settings-grid' }, groups), foot);
    saveBtn.disabled = true;
  }

  return {
    async enter() {
      if (!form) {
        msgEl = h('span', { class: 'msg', id: 'settings-msg', role: 'status' });
        saveBtn = h('button', { class: 'btn primary', type: 'submit', id: 'save-settings', text: 'Save' });
        const revert = h('button', { class: 'btn ghost', type: 'button', text: 'Undo changes', onclick: () => { render(loaded); msgEl.textContent = ''; } });
        foot = h('div', { class: 'form-foot' }, msgEl, revert, saveBtn);
        form = h('form', { id: 'settings-form', novalidate: true, onsubmit: save });
        root.append(form);
      }
      if (loaded && Object.keys(changed()).length) return; // keep unsaved edits
      form.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
      try { render(await api('/api/config')); msgEl.textContent = ''; } catch (e) { form.replaceChildren(h('p', { class: 'empty err', text: `Could not load the settings: ${e.message}` })); }
    },
  };
})();

// ---------------------------------------------------------------------------------------------
// System: storage, recorder, device health, clock, sign out.

views.system = (() => {
  const root = $('#view-system');
  let built = false, el = {}, timeInfo = null, clockTimer = 0;
  const dl = (rows) => h('dl', { class: 'facts' }, rows.flatMap(([k, id]) => [h('dt', { text: k }), h('dd', { id, class: id === 'sys-camera' ? 'long' : undefined })]));
  const set = (id, v) => { const e = document.getElementById(id); if (e) e.textContent = v; };

  function update(s) {
    if (!built) return;
    // The recording switched codec (settings changed): switch players.
    if (current === 'live' && !document.hidden && (player || img.getAttribute('src')) && !!player !== (h264() && canMse())) startStream();
    const st = s.storage || {};
    const used = st.used_bytes ?? 0, cap = st.cap_bytes ?? 0;
    const pct = cap ? Math.min(100, (100 * used) / cap) : 0;
    el.gauge.style.width = `${pct}%`;
    el.gauge.className = pct > 90 ? 'u hi' : 'u';
    set('sys-storage-big', `${Math.round(pct)}%`);
    set('sys-storage-text', `${fmtBytes(used)} of ${fmtBytes(cap)} used · ${fmtBytes(st.free_bytes)} free on the card`);
    set('sys-oldest', s.oldest ? fmtTime(tms(s.oldest), { date: true }) : 'none');
    set('sys-newest', s.newest ? fmtTime(tms(s.newest), { date: true }) : 'none');
    set('sys-span', s.oldest && s.newest ? fmtDur((tms(s.newest) - tms(s.oldest)) / 1000) : '–');
    set('sys-segments', String(s.segments ?? '–'));
    const state = s.state || (s.recording ? 'recording' : 'stopped');
    set('sys-state', { recording: 'Recording', stopped: 'Stopped', camera_lost: 'Camera lost', card_full: 'Card full: nothing is being recorded', starting: 'Starting' }[state] || state);
    set('sys-camera', s.camera || '–');
    set('sys-fps', typeof s.fps === 'number' ? `${s.fps.toFixed(1)} fps` : '–');
    set('sys-frames', String(s.frames ?? '–'));
    const lost = s.lost || {};
    const why = [['driver', 'camera driver'], ['deadline', 'camera buffers full'], ['encoder', 'encoder'], ['backpressure', 'card too slow'], ['store', 'write failed']]
      .filter(([k]) => lost[k] > 0).map(([k, t]) => `${t} ${lost[k]}`);
    set('sys-dropped', s.dropped === undefined ? '–' : why.length ? `${s.dropped} (${why.join(' · ')})` : String(s.dropped));
    set('sys-durable', s.durable_seq === null || s.durable_seq === undefined ? 'none yet' : String(s.durable_seq));
    set('sys-viewers', String(s.live_clients ?? '–'));
    const y = s.system || {};
    const cpu = y.cpu_percent;
    set('sys-cpu', typeof cpu === 'number' ? `${cpu.toFixed(0)}%` : '–');
    el.cpu.style.width = `${clamp(cpu || 0, 0, 100)}%`;
    const mu = y.mem_used_bytes, mt = y.mem_total_bytes;
    set('sys-mem', mt ? `${fmtBytes(mu)} / ${fmtBytes(mt)}` : '–');
    el.mem.style.width = `${mt ? (100 * mu) / mt : 0}%`;
    set('sys-rss', fmtBytes(y.rss_bytes));
    set('sys-temp', typeof y.temp_c === 'number' ? `${y.temp_c.toFixed(1)} °C` : 'no sensor');
    const th = y.throttled;
    const thEl = document.getElementById('sys-throttle');
    if (thEl) {
      if (!th) { thEl.textContent = 'not reported (not a Pi)'; thEl.className = ''; }
      else if (th.under_voltage || th.throttled) { thEl.textContent = [th.under_voltage && 'UNDER-VOLTAGE', th.throttled && 'THROTTLED'].filter(Boolean).join(', ') + ` (${th.raw})`; thEl.className = 'flag-bad'; }
      else { thEl.textContent = `OK (${th.raw})`; thEl.className = 'flag-ok'; }
    }
    set('sys-uptime', typeof s.uptime_s === 'number' ? fmtDur(s.uptime_s) : '–');
    set('sys-version', s.version ? `blackbox ${s.version}` : '–');
    set('sys-started', s.started ? fmtTime(tms(s.started), { date: true }) : '–');
  }

  function tickClock() {
    set('clock-browser', fmtTime(Date.now(), { date: true }));
    if (!timeInfo) return;
    const dev = timeInfo.unix_ms + (performance.now() - timeInfo.at);
    set('clock-device', fmtTime(dev, { date: true }));
    const diff = (dev - Date.now()) / 1000;
    set('clock-diff', Math.abs(diff) < 2 ? 'in step with this phone' : `${fmtDur(Math.abs(diff))} ${diff > 0 ? 'ahead of' : 'behind'} this phone`);
  }
  async function loadTime() {
    try {
      const t = await api('/api/time');
      timeInfo = { unix_ms: t.unix_ms ?? tms(t.utc), at: performance.now(), settable: t.settable };
      el.clockNote.textContent = t.settable ? '' : 'This device does not let blackbox set its clock.';
    } catch (e) { el.clockNote.textContent = `Device time unavailable: ${e.message}`; }
    tickClock();
  }
  async function setClock() {
    el.clockNote.className = 'muted';
    try {
      await api('/api/time', { method: 'PUT', body: { unix_ms: Date.now() } });
      el.clockNote.textContent = 'Device clock set from this phone.'; el.clockNote.className = 'ok';
      loadTime();
    } catch (e) { el.clockNote.textContent = e.message; el.clockNote.className = 'err'; }
  }

  function build() {
    el.gauge = h('div', { class: 'u' });
    el.cpu = h('div'); el.mem = h('div');
    el.clockNote = h('p', { class: 'muted', id: 'clock-note' });
    root.append(h('div', { class: 'grid' },
      h('div', { class: 'card', id: 'card-storage' }, h('h3', { text: 'Storage' }),
        h('div', { class: 'big', id: 'sys-storage-big', text: '–' }),
        h('div', { class: 'gauge', role: 'img', 'aria-label': 'Storage used' }, el.gauge),
        h('p', { class: 'muted', id: 'sys-storage-text' }),
        dl([['Oldest footage', 'sys-oldest'], ['Newest footage', 'sys-newest'], ['Span', 'sys-span'], ['Segments', 'sys-segments']])),
      h('div', { class: 'card' }, h('h3', { text: 'Recorder' }),
        dl([['State', 'sys-state'], ['Camera', 'sys-camera'], ['Frame rate', 'sys-fps'], ['Frames', 'sys-frames'], ['Dropped', 'sys-dropped'], ['Durable up to', 'sys-durable'], ['Live viewers', 'sys-viewers']])),
      h('div', { class: 'card' }, h('h3', { text: 'Device' }),
        h('div', { class: 'inrow spread' }, h('span', { text: 'CPU', class: 'muted' }), h('strong', { id: 'sys-cpu', class: 'num' })), h('div', { class: 'meter' }, el.cpu),
        h('div', { class: 'inrow spread' }, h('span', { text: 'Memory', class: 'muted' }), h('strong', { id: 'sys-mem', class: 'num' })), h('div', { class: 'meter' }, el.mem),
        dl([['blackbox memory', 'sys-rss'], ['Temperature', 'sys-temp'], ['Power / throttling', 'sys-throttle'], ['Uptime', 'sys-uptime'], ['Started', 'sys-started'], ['Version', 'sys-version']]),
        h('button', { class: 'btn', type: 'button', id: 'logout-everywhere', onclick: async () => {
          if (!window.confirm('Sign out every phone and browser, this one included?')) return;
          try { await fetch('/logout-everywhere', { method: 'POST', credentials: 'same-origin' }); } finally { location.href = '/login'; }
        } }, 'Sign out everywhere')),
      h('div', { class: 'card' }, h('h3', { text: 'Clock' }),
        dl([['Device', 'clock-device'], ['This phone', 'clock-browser'], ['Difference', 'clock-diff']]),
        h('div', { class: 'spacer' }),
        h('button', { class: 'btn primary', type: 'button', id: 'set-clock', onclick: setClock, text: "Set the device clock to this phone's time" }),
        el.clockNote,
        h('p', { class: 'muted', text: 'The Pi has no battery clock: after a power cut its time may be wrong until it is set.' })),
      h('div', { class: 'card' }, h('h3', { text: 'Session' }),
        h('p', { class: 'muted', text: 'Signing out ends this browser\u2019s session. You need the device secret to sign in again.' }),
        h('form', { method: 'post', action: '/logout', id: 'logout-form' }, h('button', { class: 'btn', type: 'submit', id: 'logout', text: 'Sign out' })))));
    root.querySelector('.grid').before(h('div', { class: 'toolbar' }, h('h2', { text: 'System', class: 'grow' }), zoneSwitch('zone-system', () => { if (lastStatus) update(lastStatus); tickClock(); })));
    onStatus(update);
    built = true;
  }

  return {
    enter() {
      if (!built) build();
      if (lastStatus) update(lastStatus);
      loadTime();
      clearInterval(clockTimer);
      clockTimer = setInterval(tickClock, 1000);
    },
    leave() { clearInterval(clockTimer); },
  };
})();

// ---------------------------------------------------------------------------------------------
// Camera controls drawer: /api/controls grouped by category.

const drawer = (() => {
  const panel = $('#drawer'), scrim = $('#scrim'), body = $('#drawer-body');

  function close() { panel.hidden = true; scrim.hidden = true; }
  async function send(c, row, path, payload) {
    const err = row.querySelector('.ferr');
    err.hidden = true;
    try {
      const r = await api(path, { method: payload === undefined ? 'POST' : 'PUT', body: payload });
      if (r && typeof r === 'object' && 'value' in r) Object.assign(c, r);
      row.replaceWith(control(c));
    } catch (e) {
      err.textContent = e.message; err.hidden = false;
    }
  }
  function control(c) {
    const id = `ctl-${c.id}`;
    const err = h('div', { class: 'ferr', role: 'alert', hidden: true });
    const dis = c.read_only;
    const set = (v) => send(c, row, `/api/controls/${c.id}`, { value: v });
    const val = h('span', { class: 'val', id: `${id}-val` });
    let input;
    switch (c.type) {
      case 'integer': {
        input = h('input', { type: 'range', class: 'big', id, min: String(c.min), max: String(c.max), step: String(c.step || 1), disabled: dis });
        input.value = String(c.value);
        val.textContent = String(c.value);
        input.addEventListener('input', () => (val.textContent = input.value));
        input.addEventListener('change', () => set(Number(input.value)));
        break;
      }
      case 'boolean': {
        const cb = h('input', { type: 'checkbox', id, role: 'switch', disabled: dis });
        cb.checked = Boolean(c.value);
        cb.addEventListener('change', () => set(cb.checked));
        input = h('span', { class: 'switch' }, cb, h('span'));
        break;
      }
      case 'menu':
      case 'integer_menu': {
        input = h('select', { id, disabled: dis, onchange: () => set(Number(input.value)) },
          (c.menu || []).map((m) => h('option', { value: String(m.index), text: String(m.name ?? m.value ?? m.index) })));
        input.value = String(c.value);
        break;
      }
      case 'button':
        input = h('button', { class: 'btn small', type: 'button', id, disabled: dis, text: 'Run', onclick: () => set(true) });
        break;
      default: {
        input = h('input', { type: c.type === 'string' ? 'text' : 'number', id, disabled: dis });
        input.value = String(c.value ?? '');
        input.addEventListener('change', () => set(c.type === 'string' ? input.value : Number(input.value)));
      }
    }
    const canReset = c.type !== 'button' && c.default !== undefined && !dis;
    const reset = canReset ? h('button', { class: 'btn small ghost', type: 'button', 'aria-label': `Reset ${c.name}`, title: 'Back to default', text: 'Reset',
      disabled: c.value === c.default, onclick: () => send(c, row, `/api/controls/${c.id}/reset`, undefined) }) : null;
    const head = c.type === 'integer' || c.type === 'boolean'
      ? h('div', { class: 'ctl-top' }, h('label', { for: id, text: c.name }), c.type === 'integer' ? val : input, reset)
      : h('div', { class: 'ctl-top' }, h('label', { for: id, text: c.name }), reset);
    const row = h('div', { class: `ctl${c.inactive ? ' inactive' : ''}`, 'data-id': String(c.id) }, head,
      c.type === 'integer' ? input : c.type === 'boolean' ? null : input,
      c.inactive ? h('div', { class: 'muted', text: 'Inactive with the current settings' }) : null, err);
    return row;
  }
  async function open() {
    panel.hidden = false; scrim.hidden = false;
    body.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
    let list;
    try { list = (await api('/api/controls')).controls || []; } catch (e) {
      body.replaceChildren(h('p', { class: 'empty', id: 'controls-empty', text: e.status === 404 ? 'Camera controls are not available in this version of blackbox.' : `Could not load the controls: ${e.message}` }));
      return;
    }
    if (!list.length) {
      body.replaceChildren(h('p', { class: 'empty', id: 'controls-empty', text: 'This camera has no adjustable controls.' }));
      return;
    }
    const groups = new Map();
    for (const c of list) { const g = c.category || 'Camera'; if (!groups.has(g)) groups.set(g, []); groups.get(g).push(c); }
    body.replaceChildren(...[...groups].map(([g, cs]) => h('section', { class: 'ctl-group' }, h('h3', { text: g }), cs.map(control))));
  }
  $('#drawer-close').addEventListener('click', close);
  scrim.addEventListener('click', close);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !panel.hidden) close(); });
  return { open, close };
})();

// ---------------------------------------------------------------------------------------------
// Start

$('#rec-pill').addEventListener('click', () => { location.hash = 'live'; });
// ---------------------------------------------------------------------------------------------
// Events: impacts, "Save incident", motion and bumps while parked (/api/incidents)

function eventKind(e) {
  return { impact: 'Impact', button: 'Saved incident', motion: 'Motion (parked)', bump: 'Bump (parked)' }[e.kind] || e.kind;
}

views.events = (() => {
  const root = $('#view-events');
  let list = null, filter = null;
  async function load() {
    const kind = filter.value;
    try {
      const r = await api(`/api/incidents${kind ? `?kind=${kind}` : ''}`);
      list.replaceChildren(...(r.incidents.length ? r.incidents.map(row) : [h('p', { class: 'muted', text: 'No events yet. Impacts, "Save incident" and motion while parked appear here.' })]));
    } catch (e) { list.replaceChildren(h('p', { class: 'bad', text: `Events could not be loaded: ${e.message}` })); }
  }
  function row(e) {
    const from = tms(e.from), to = tms(e.to);
    const unlock = h('button', { class: 'btn', type: 'button', 'data-unlock': String(e.id), disabled: !e.locked, onclick: async () => {
      try { await api(`/api/incidents/${e.id}/unlock`, { method: 'POST' }); toast('Unlocked: retention may now delete its footage'); load(); } catch (err) { toast(err.message, true); }
    } }, e.locked ? 'Unlock' : 'Unlocked');
    return h('div', { class: 'card event', 'data-id': String(e.id) },
      h('a', { href: `#player?t=${from}`, class: 'event-thumb', 'aria-label': `Play event ${e.id}` },
        h('img', { src: e.thumb, alt: `${eventKind(e)} at ${fmtTime(tms(e.time))}`, loading: 'lazy', width: '160', height: '90' })),
      h('div', { class: 'event-info' },
        h('strong', { text: eventKind(e) + (e.peak_g != null ? ` · ${e.peak_g.toFixed(1)} g` : '') }),
        h('span', { text: fmtTime(tms(e.time), { date: true }) }),
        h('span', { class: 'muted', text: `${fmtDur((to - from) / 1000)} protected${e.repeats ? `, ${e.repeats + 1} triggers` : ''}${e.locked ? '' : ' (unlocked)'}` }),
        h('div', { class: 'event-actions' },
          h('a', { class: 'btn', href: `#player?t=${from}`, text: 'Play' }),
          h('a', { class: 'btn', href: e.mp4, download: `blackbox_event_${e.id}.mp4`, text: 'Download MP4' }),
          unlock)));
  }
  return {
    enter() {
      if (!list) {
        filter = h('select', { id: 'events-kind', 'aria-label': 'Kind', onchange: load },
          h('option', { value: '', text: 'All events' }), h('option', { value: 'impact', text: 'Impacts' }), h('option', { value: 'button', text: 'Saved incidents' }),
          h('option', { value: 'motion', text: 'Motion (parked)' }), h('option', { value: 'bump', text: 'Bumps (parked)' }));
        list = h('div', { class: 'events', id: 'events-list' });
        root.append(h('div', { class: 'row' }, h('h2', { text: 'Events' }), filter), list);
      }
      load();
    },
  };
})();

window.addEventListener('hashchange', route);
pollStatus();
startEvents();
route();
