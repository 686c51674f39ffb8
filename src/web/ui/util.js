// Shared pieces of the dashboard: the element builder, the API call, times and durations,
// the UTC/local switch, footage ranges on a timeline bar, date/time fields.

// ---------------------------------------------------------------------------------------------
// Small helpers

export const $ = (sel, el = document) => el.querySelector(sel);

/** Element builder: h('div', {class: 'x', onclick: f}, child, 'text', ...). Text is never HTML. */
export function h(tag, attrs, ...kids) {
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

export const ICONS = {
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
  mic: 'M12 2a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V5a3 3 0 0 1 3-3zm-7 9h2a5 5 0 0 0 10 0h2a7 7 0 0 1-6 6.9V21h-2v-3.1A7 7 0 0 1 5 11z',
  'mic-off': 'M3.3 2 2 3.3l6 6V11a4 4 0 0 0 6 3.4l1.5 1.5A6 6 0 0 1 7 11H5a8 8 0 0 0 6 7.7V21h2v-2.3a8 8 0 0 0 3.9-1.4l3.8 3.7 1.3-1.3zM16 11V5a4 4 0 0 0-7.7-1.5L16 11.2z',
  sound: 'M3 9h4l5-5v16l-5-5H3zm13.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z',
  'sound-off': 'M3 9h4l5-5v16l-5-5H3zm13.6 3 2.7-2.7 1.4 1.4-2.7 2.7 2.7 2.7-1.4 1.4-2.7-2.7-2.7 2.7-1.4-1.4 2.7-2.7-2.7-2.7 1.4-1.4z',
};
export const icon = (name) => {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
};

// The camera the pages show (config `cameras`): '' is the first (`front`), which every API route
// answers for without `?camera=`; any other goes with the per-camera requests (camq).
export const camera = { name: localStorage.getItem('bb.camera') || '', first: 'front', names: [] };
export function camq(path) {
  if (!camera.name) return path;
  return `${path}${path.includes('?') ? '&' : '?'}camera=${encodeURIComponent(camera.name)}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

export let toastTimer = 0;
export function toast(msg, bad = false) {
  const t = $('#toast');
  t.textContent = msg;
  t.className = bad ? 'toast bad' : 'toast';
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), bad ? 6000 : 3500);
}

export class ApiError extends Error {
  constructor(status, message, key) {
    super(message);
    this.status = status;
    this.key = key;
  }
}

/** A server message for people: ISO 8601 times become "Sat 5 Dec 2026, 14:03:22 local" (in
 *  the chosen zone), raw config keys their labels where the page knows them. */
export function humane(msg) {
  return String(msg).replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})/g, (m) => {
    const ms = Date.parse(m);
    return Number.isNaN(ms) ? m : fmtTime(ms, { date: true });
  });
}

/** JSON API call. 401 sends the browser to the login page. Errors carry the server's message. */
export async function api(path, { method = 'GET', body } = {}) {
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
  if (!r.ok) throw new ApiError(r.status, humane((data && data.error) || `${r.status} ${r.statusText}`), data && data.key);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Time: every displayed time says UTC or local.

export const zone = {
  // Local time by default (drivers think in it); UTC one tap away, remembered.
  get utc() { return localStorage.getItem('bb.zone') === 'utc'; },
  set(utc) { localStorage.setItem('bb.zone', utc ? 'utc' : 'local'); },
  get label() { return this.utc ? 'UTC' : 'local'; },
};
export const pad = (n, w = 2) => String(n).padStart(w, '0');
export const parts = (ms) => {
  const d = new Date(ms);
  return zone.utc
    ? { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds(), wd: d.getUTCDay() }
    : { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds(), ms: d.getMilliseconds(), wd: d.getDay() };
};
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
/** "14:03:22 UTC" / "15:03:22.120 local" / "Sat 21 Nov 14:03 UTC". */
export function fmtTime(ms, { date = false, secs = true, frac = false, label = true } = {}) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  const p = parts(ms);
  let s = `${pad(p.h)}:${pad(p.mi)}`;
  if (secs) s += `:${pad(p.s)}`;
  if (frac) s += `.${pad(p.ms, 3)}`;
  if (date) s = `${DAYS[p.wd]} ${p.d} ${MONTHS[p.mo]} ${p.y}, ${s}`;
  return label ? `${s} ${zone.label}` : s;
}
export const fmtDay = (ms) => { const p = parts(ms); return `${DAYS[p.wd]} ${p.d} ${MONTHS[p.mo]} ${p.y}`; };
export const dayKey = (ms) => { const p = parts(ms); return `${p.y}-${pad(p.mo + 1)}-${pad(p.d)}`; };
/** Start of the day `key` (YYYY-MM-DD) in the chosen zone, and of the next day. */
export function dayRange(key) {
  const [y, m, d] = key.split('-').map(Number);
  return zone.utc ? [Date.UTC(y, m - 1, d), Date.UTC(y, m - 1, d + 1)] : [new Date(y, m - 1, d).getTime(), new Date(y, m - 1, d + 1).getTime()];
}
export const iso = (ms) => new Date(ms).toISOString();
export const tms = (t) => (typeof t === 'number' ? t : Date.parse(t));
export function fmtDur(s) {
  if (s > 0 && s < 1) return 'under 1 s';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(s % 60)} s`;
  const hh = Math.floor(m / 60);
  if (hh < 48) return `${hh} h ${pad(m % 60)} min`;
  return `${Math.floor(hh / 24)} d ${hh % 24} h`;
}
export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${u[i]}`;
}

/** UTC / local switch; `onchange` re-renders whatever shows times. */
export function zoneSwitch(id, onchange) {
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
// Recordings: one day as hour rows, footage green, protected amber, gaps empty.

/** Clips [from, to) ranges to [a, b) and returns them as fractions of the span. */
export const spans = (ranges, a, b) => ranges
  .filter((r) => r.to > a && r.from < b)
  .map((r) => [(Math.max(r.from, a) - a) / (b - a), (Math.min(r.to, b) - a) / (b - a)]);
/** A segment's footage as ranges: its span less the stretches without frames inside it. */
export const segRanges = (segs) => segs.flatMap((s) => {
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

export function barFill(bar, foot, prot, a, b) {
  for (const [x0, x1] of spans(foot, a, b)) {
    const f = h('div', { class: 'f' }); f.style.left = `${x0 * 100}%`; f.style.width = `${Math.max((x1 - x0) * 100, 0.4)}%`; bar.append(f);
  }
  for (const [x0, x1] of spans(prot, a, b)) {
    const p = h('div', { class: 'p' }); p.style.left = `${x0 * 100}%`; p.style.width = `${Math.max((x1 - x0) * 100, 0.4)}%`; bar.append(p);
  }
}


// ---------------------------------------------------------------------------------------------
// Export: pick a range (presets, the timeline, or from/to fields), see what the MP4 will be
// (/api/export.json), download it with the browser's own download manager (a plain link to
// /api/export.mp4; the session cookie authenticates it). #export?from=MS&to=MS opens a range.

/** "2026-11-22" and "05:50:10" for date and time inputs, in the chosen zone. */
export const fieldDate = (ms) => { const p = parts(ms); return `${p.y}-${pad(p.mo + 1)}-${pad(p.d)}`; };
export const fieldTime = (ms) => { const p = parts(ms); return `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`; };
/** The instant a date and a time input name, in the chosen zone; null when incomplete. */
export function fieldsToMs(date, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date), t = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(time.trim());
  if (!d || !t || Number(t[1]) > 23 || Number(t[2]) > 59 || Number(t[3] || 0) > 59) return null;
  const [y, mo, da, hh, mi, ss] = [d[1], d[2], d[3], t[1], t[2], t[3] || '0'].map(Number);
  return zone.utc ? Date.UTC(y, mo - 1, da, hh, mi, ss) : new Date(y, mo - 1, da, hh, mi, ss).getTime();
}

export function eventKind(e) {
  return { impact: 'Impact', button: 'Saved incident', motion: 'Motion (parked)', bump: 'Bump (parked)' }[e.kind] || e.kind;
}
