import { $, api, camera, camq, fmtTime, tms } from './util.js';

// ---------------------------------------------------------------------------------------------
// Recorder status: server-sent events, with polling as the fallback.

export const statusListeners = new Set();
export let lastStatus = null;
export function onStatus(f) { statusListeners.add(f); if (lastStatus) f(lastStatus); return () => statusListeners.delete(f); }
export let lastStatusAt = 0;
export function setStatus(s) {
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
  showCameras(s);
  for (const f of statusListeners) f(s);
}
/** The camera picker in the header: shown with two cameras or more. */
function showCameras(s) {
  const list = s.cameras || [];
  const pick = $('#camera-pick');
  if (!pick) return;
  const names = list.map((c) => c.name);
  camera.names = names;
  if (names.length) camera.first = names[0];
  if (camera.name && names.length && !names.includes(camera.name)) { switchCamera(''); return; }
  pick.hidden = names.length < 2;
  if (pick.dataset.names !== names.join(',')) {
    pick.dataset.names = names.join(',');
    pick.replaceChildren(...names.map((n) => { const o = document.createElement('option'); o.value = n; o.textContent = n; return o; }));
  }
  pick.value = camera.name || camera.first;
  for (const o of pick.options) {
    const c = list.find((x) => x.name === o.value);
    o.textContent = c && c.state !== 'recording' ? `${c.name} (${c.state.replace('_', ' ')})` : o.value;
  }
}
/** Shows another camera on every page: its status stream, then the current page again. */
export function switchCamera(name) {
  camera.name = name === camera.first ? '' : name;
  if (camera.name) localStorage.setItem('bb.camera', camera.name); else localStorage.removeItem('bb.camera');
  if (events) { events.close(); events = null; }
  lastStatus = null;
  startEvents();
  pollStatus();
  for (const f of cameraListeners) f(camera.name);
}
export const cameraListeners = new Set();

export function offline() { disconnected(); }
/** No status for 5 s (events arrive at least every 2 s): the device is out of reach. Says so
 *  on every page, greys the REC pill and, on the live view, covers the picture; it clears by
 *  itself with the next status (the event stream and polling keep trying). */
export function disconnected() {
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

export let events = null;
export async function pollStatus() {
  try { setStatus(await api(camq('/api/status'))); } catch (e) { if (e.status !== 401) offline(); }
}
export function startEvents() {
  if (events) return;
  let gotOne = false;
  events = new EventSource(camq('/api/events'));
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
