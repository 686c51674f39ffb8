import { $, h, clamp, api, fmtTime, tms, fmtDur, fmtBytes, zoneSwitch } from './util.js';
import { lastStatus, onStatus } from './status.js';
import { views } from './nav.js';
import { offloadCard, updateOffload } from './offload.js';
import { alertsCard, updateAlerts } from './alerts.js';

// ---------------------------------------------------------------------------------------------
// System: storage, recorder, device health, clock, sign out.

views.system = (() => {
  const root = $('#view-system');
  let built = false, el = {}, timeInfo = null, clockTimer = 0;
  const dl = (rows) => h('dl', { class: 'facts' }, rows.flatMap(([k, id]) => [h('dt', { text: k }), h('dd', { id, class: id === 'sys-camera' ? 'long' : undefined })]));
  const set = (id, v) => { const e = document.getElementById(id); if (e) e.textContent = v; };

  function update(s) {
    if (!built) return;
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
    const g = s.gps || { state: 'off' };
    set('sys-gps-state', { off: 'Off', searching: 'No receiver found', 'no fix': 'Receiver found, no fix yet', fix: 'Fix', lost: 'Receiver lost (looking for it again)' }[g.state] || g.state);
    const f = g.fix;
    set('sys-gps-pos', f ? `${Math.abs(f.lat).toFixed(5)}° ${f.lat < 0 ? 'S' : 'N'}, ${Math.abs(f.lon).toFixed(5)}° ${f.lon < 0 ? 'W' : 'E'}` : '–');
    set('sys-gps-speed', f ? `${f.speed_kmh.toFixed(0)} km/h${f.course_deg === null ? '' : ` · heading ${f.course_deg.toFixed(0)}°`}` : '–');
    set('sys-gps-when', f ? `${fmtTime(tms(f.time), { date: true })} (${f.age_s < 5 ? 'now' : `${fmtDur(f.age_s)} ago`})` : '–');
    set('sys-gps-sats', g.state === 'off' ? '–' : `${g.satellites}${g.hdop === null || g.hdop === undefined ? '' : ` (HDOP ${g.hdop})`}`);
    set('sys-gps-device', g.device ? `${g.device}${g.baud ? ` at ${g.baud} baud` : ''}` : '–');
    set('sys-gps-clock', { waiting: 'waiting for 3 good fixes', set: `set from GPS (it was ${g.clock_offset_s} s off)`, right: 'agrees with GPS', 'not allowed': `${g.clock_offset_s} s off GPS; blackbox may not set it` }[g.clock] || '–');
    const bad = [['bad_checksum', 'bad checksum'], ['void_fixes', 'no fix'], ['bad_dates', 'bad date'], ['bad_fields', 'bad field']].filter(([k]) => g[k] > 0).map(([k, t]) => `${t} ${g[k]}`);
    set('sys-gps-refused', bad.length ? bad.join(' · ') : 'none');
    updateOffload(s.offload);
    updateAlerts(s.alerts);
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
      h('div', { class: 'card', id: 'card-gps' }, h('h3', { text: 'GPS' }),
        dl([['Receiver', 'sys-gps-state'], ['Position', 'sys-gps-pos'], ['Speed', 'sys-gps-speed'], ['Last fix', 'sys-gps-when'], ['Satellites', 'sys-gps-sats'], ['Device', 'sys-gps-device'], ['Clock', 'sys-gps-clock'], ['Sentences refused', 'sys-gps-refused']])),
      offloadCard(),
      alertsCard(),
      h('div', { class: 'card', id: 'card-pair' }, h('h3', { text: 'Pair another phone' }),
        h('p', { class: 'muted', text: 'A link that signs one phone in without typing the secret: scan the code with its camera. It works once, for 10 minutes.' }),
        h('button', { class: 'btn', type: 'button', id: 'pair', onclick: pair, text: 'Show a pairing code' }),
        el.pair = h('div', { class: 'pair', id: 'pair-out', hidden: true })),
      h('div', { class: 'card' }, h('h3', { text: 'Session' }),
        h('p', { class: 'muted', text: 'Signing out ends this browser\u2019s session. You need the device secret to sign in again.' }),
        h('form', { method: 'post', action: '/logout', id: 'logout-form' }, h('button', { class: 'btn', type: 'submit', id: 'logout', text: 'Sign out' })))));
    root.querySelector('.grid').before(h('div', { class: 'toolbar' }, h('h2', { text: 'System', class: 'grow' }), zoneSwitch('zone-system', () => { if (lastStatus) update(lastStatus); tickClock(); })));
    onStatus(update);
    built = true;
  }

  async function pair() {
    try {
      const r = await api('/api/pairing', { method: 'POST' });
      // The QR code as an image (data: URL, allowed by the page's CSP; no markup injected).
      const img = h('img', { src: `data:image/svg+xml;base64,${btoa(r.qr_svg)}`, alt: 'Pairing QR code', width: '220', height: '220', id: 'pair-qr' });
      el.pair.replaceChildren(img, h('p', {}, h('a', { href: r.url, id: 'pair-link', text: r.url })),
        h('p', { class: 'muted', text: `Works once, until ${fmtTime(tms(r.expires))}.` }));
      el.pair.hidden = false;
    } catch (e) { el.pair.replaceChildren(h('p', { class: 'err', text: e.message })); el.pair.hidden = false; }
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
