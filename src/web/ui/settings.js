import { $, h, api, toast, fmtDur, fmtBytes, iso } from './util.js';
import { views, current } from './nav.js';

// ---------------------------------------------------------------------------------------------
// Settings for drivers: GET/PUT /api/config in plain words. Resolution and frame rate come from
// the camera's real modes (/api/camera/modes), the loop length is in minutes, the cap says how
// many hours of footage fit at the measured bitrate, values are checked here before sending
// (the API's keyed errors stay for API clients), and network/sync settings sit under
// "Advanced" with a warning. Then this device: Wi-Fi and passwords (/api/device/credentials),
// erase the card and reboot.

/** Config keys: [key, label, {unit, min, max, step, help, scale}]. `scale` shows the value
 *  divided by it (kbit/s as Mbit/s). */
const VIDEO_EXTRA = [
  ['video_bitrate_kbps', 'Video quality (bitrate)', { unit: 'Mbit/s', min: 100, max: 50000, step: 0.1, scale: 1000, help: 'Higher is sharper and fills the card sooner. 4 Mbit/s suits 720p.' }],
  ['mjpeg_quality', 'JPEG quality', { min: 1, max: 100, help: 'For Motion JPEG recordings of raw cameras and the test pattern.' }],
  ['embed_timestamp', 'Burn the time into the picture', {}],
];
const STORAGE = [
  ['storage_cap_gb', 'Space for recordings', { unit: 'GiB', min: 0.01, max: 65536, step: 0.01, help: 'When it is full, the oldest footage that is not protected makes room.' }],
  ['protected_cap_percent', 'Space for protected footage', { unit: '%', min: 0, max: 100, help: 'Share of that space events and protected footage may use.' }],
];
const EVENTS = [
  ['event_pre_s', 'Keep before an event', { unit: 's', min: 0, max: 600 }],
  ['event_post_s', 'Keep after an event', { unit: 's', min: 0, max: 600 }],
  ['gsensor_threshold_g', 'Impact sensitivity while driving', { unit: 'g', min: 0.5, max: 16, step: 0.1, help: 'A jolt above this locks the footage around it. Lower is more sensitive.' }],
  ['gsensor_parked_threshold_g', 'Bump sensitivity while parked', { unit: 'g', min: 0.1, max: 16, step: 0.1 }],
  ['parking_after_min', 'Parking mode after standing still', { unit: 'min', min: 0, max: 1440, help: '0: never by itself.' }],
];
const GPS = [
  ['subtitle_position', 'Show the position in exported videos', { help: 'Off: exports show the time and speed only (privacy). The route stays on the card and in the GPX download.' }],
  ['audio', 'Record sound', { help: 'Off: the microphone is closed and no sound is stored (also the microphone button on the live page).' }],
];
const ADVANCED = [
  ['camera_device', 'Camera device', { help: 'For example /dev/video0, or rtsp://user:password@host/path for an IP camera. Empty: find one automatically.' }],
  ['keyframe_interval_s', 'Key frame every', { unit: 's', min: 1, max: 10 }],
  ['min_free_mb', 'Keep free on the card', { unit: 'MiB', min: 0, max: 1048576 }],
  ['commit_interval_ms', 'Sync interval', { unit: 'ms', min: 10, max: 60000, help: 'Longest time between syncs: the most video a power cut can take.' }],
  ['commit_frames', 'Sync after frames', { unit: 'frames', min: 1, max: 100000 }],
  ['listen', 'Dashboard address', { help: 'IP:PORT, applied at the next start. A wrong address locks you out of this page until it is fixed in config.json.' }],
  ['port', 'Port override', { min: 0, max: 65535, help: 'Nonzero replaces the port in the address (next start).' }],
  ['max_live_clients', 'Live viewers at once', { min: 1, max: 64 }],
  ['gsensor_device', 'G-sensor', { help: 'auto, off, or /dev/i2c-N[@ADDR].' }],
  ['gps_device', 'GPS receiver', { help: 'auto, off, or a serial device such as /dev/ttyACM0 or /dev/serial0@9600 (next start).' }],
  ['audio_device', 'Microphone', { help: 'auto, off, or a capture device such as /dev/snd/pcmC1D0c (next start).' }],
];
const LOOP_MIN = [1, 2, 3, 5, 10];
const LABELS = Object.fromEntries([...VIDEO_EXTRA, ...STORAGE, ...EVENTS, ...GPS, ...ADVANCED].map(([k, l]) => [k, l]));
Object.assign(LABELS, { cameras: 'Cameras', video_fps: 'Frame rate', video_res_width: 'Resolution', video_res_height: 'Resolution', segment_length_s: 'Loop length', video_codec: 'Recording format', speed_unit: 'Speed unit' });

views.settings = (() => {
  const root = $('#view-settings');
  let form, foot, msgEl, saveBtn, loaded = null, modes = null, rate = null, devBox, rateTimer = 0;
  const fields = new Map(); // key -> {get(), wrap, err, input, check(v)}

  const fieldWrap = (key, label, control, help, err) => h('div', { class: 'field', 'data-key': key },
    h('label', { for: control.id, text: label }), control.row || control, help ? h('div', { class: 'help', text: help }) : null, err);

  /** A number/text/switch field for a config key. */
  function plainField(key, label, o, value) {
    const type = typeof value === 'boolean' ? 'bool' : typeof value === 'number' ? 'num' : 'text';
    const id = `cfg-${key}`;
    const err = h('div', { class: 'ferr', id: `${id}-err`, role: 'alert', hidden: true });
    const scale = o.scale || 1;
    let input, wrap;
    if (type === 'bool') {
      input = h('input', { type: 'checkbox', id, name: key, role: 'switch' });
      input.checked = value;
      const row = h('div', { class: 'inrow' }, h('label', { for: id, text: label, class: 'grow' }), h('span', { class: 'switch' }, input, h('span')));
      row.firstChild.style.flex = '1';
      wrap = h('div', { class: 'field', 'data-key': key }, row, o.help ? h('div', { class: 'help', text: o.help }) : null, err);
    } else {
      input = h('input', { type: type === 'num' ? 'number' : 'text', id, name: key, inputmode: type === 'num' ? ((o.step && o.step < 1) || scale > 1 ? 'decimal' : 'numeric') : undefined,
        step: type === 'num' ? String(o.step || 'any') : undefined, autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': `${id}-err` });
      input.value = type === 'num' ? String(Math.round((value / scale) * 1000) / 1000) : String(value);
      const row = h('div', { class: 'inrow' }, input, o.unit ? h('span', { class: 'unit', text: o.unit }) : null);
      wrap = fieldWrap(key, label, { id, row }, o.help, err);
    }
    const get = () => {
      if (type === 'bool') return { [key]: input.checked };
      if (type === 'num') {
        const t = input.value.trim();
        const n = t === '' ? NaN : Number(t) * scale;
        return { [key]: Number.isFinite(n) ? Math.round(n * 1000) / 1000 : NaN };
      }
      return { [key]: input.value };
    };
    const check = () => {
      if (type !== 'num') return null;
      const v = get()[key];
      const unit = o.unit ? ` ${o.unit}` : '';
      const lo = o.min / scale, hi = o.max / scale;
      if (Number.isNaN(v)) return `Enter a number for “${label}”.`;
      if (o.min !== undefined && (v < o.min || v > o.max)) return `${label} must be between ${lo} and ${hi}${unit}.`;
      if (!o.step && !Number.isInteger(v)) return `${label} must be a whole number${unit ? ' of' + unit : ''}.`;
      return null;
    };
    input.addEventListener('input', () => { clearError(key); dirty(); if (key === 'storage_cap_gb') capHint(); });
    fields.set(key, { get, check, wrap, err, input });
    return wrap;
  }

  /** The cameras besides the first (`cameras`): one card each, added and removed here. An
   *  RTSP password comes back as ******** and is kept by the device when sent back that way. */
  function camerasField(list) {
    const key = 'cameras';
    const err = h('div', { class: 'ferr', id: 'cfg-cameras-err', role: 'alert', hidden: true });
    const box = h('div', { class: 'cam-list', id: 'cfg-cameras' });
    const num = (v) => (v === undefined || v === null ? '' : String(v));
    function row(c) {
      const f = (name, label, value, attrs = {}) => {
        const input = h('input', { type: attrs.type || 'text', name, autocapitalize: 'off', spellcheck: 'false', placeholder: attrs.placeholder || '', inputmode: attrs.type === 'number' ? 'numeric' : undefined });
        input.value = value;
        input.addEventListener('input', () => { clearError(key); dirty(); });
        return h('label', { class: 'cam-f' }, h('span', { text: label }), input);
      };
      const codec = select('', [['', 'as the first camera'], ['h264', 'H.264'], ['mjpeg', 'Motion JPEG']], c.codec || '');
      codec.name = 'codec';
      codec.addEventListener('change', () => { clearError(key); dirty(); });
      const card = h('div', { class: 'cam-card' },
        f('name', 'Name', c.name || '', { placeholder: 'rear' }),
        f('source', 'Source', c.source || '', { placeholder: '/dev/video2 or rtsp://user:password@host/path' }),
        h('div', { class: 'cam-nums' },
          f('width', 'Width', num(c.width), { type: 'number', placeholder: 'same' }),
          f('height', 'Height', num(c.height), { type: 'number', placeholder: 'same' }),
          f('fps', 'Frame rate', num(c.fps), { type: 'number', placeholder: 'same' }),
          f('bitrate_kbps', 'Bitrate (kbit/s)', num(c.bitrate_kbps), { type: 'number', placeholder: 'same' }),
          f('stall_s', 'Stall after (s)', num(c.stall_s ?? 5), { type: 'number' })),
        h('label', { class: 'cam-f' }, h('span', { text: 'Recording format' }), codec),
        h('button', { class: 'btn small ghost', type: 'button', onclick: () => { card.remove(); dirty(); } }, 'Remove this camera'));
      return card;
    }
    for (const c of list || []) box.append(row(c));
    const add = h('button', { class: 'btn small', type: 'button', id: 'cfg-cameras-add', onclick: () => { box.append(row({})); dirty(); } }, 'Add a camera');
    const get = () => ({
      [key]: [...box.querySelectorAll('.cam-card')].map((card) => {
        const v = (n) => card.querySelector(`[name="${n}"]`).value.trim();
        const c = { name: v('name'), source: v('source') };
        for (const n of ['width', 'height', 'fps', 'bitrate_kbps']) if (v(n) !== '') c[n] = Number(v(n));
        if (v('codec')) c.codec = v('codec');
        c.stall_s = v('stall_s') === '' ? 5 : Number(v('stall_s'));
        return c;
      }),
    });
    const check = () => {
      const names = new Set();
      for (const c of get()[key]) {
        if (!/^[a-z0-9_-]{1,16}$/.test(c.name)) return `Camera name “${c.name}”: 1 to 16 of a-z, 0-9, - and _.`;
        if (c.name === 'front' || names.has(c.name)) return `Camera name “${c.name}” is taken.`;
        names.add(c.name);
        if (!c.source) return `Camera “${c.name}”: enter its source.`;
        for (const n of ['width', 'height', 'fps', 'bitrate_kbps', 'stall_s']) if (n in c && !Number.isInteger(c[n])) return `Camera “${c.name}”: ${n} must be a whole number.`;
      }
      return null;
    };
    const wrap = h('div', { class: 'field', 'data-key': key },
      h('div', { class: 'help', text: 'Recorded at the same time as the camera above (front), each on its own. Added or removed cameras start at the next start of blackbox; changes to a camera apply at once.' }),
      box, add, err);
    fields.set(key, { get, check, wrap, err, input: add });
    return wrap;
  }

  function select(id, options, value) {
    const s = h('select', { id }, options.map(([v, t]) => h('option', { value: String(v), text: t })));
    s.value = String(value);
    return s;
  }

  /** Resolution and frame rate from the camera's modes; "(current)" when the saved one isn't listed. */
  function videoFields(cfg) {
    const list = (modes && modes.modes) || [];
    const cur = `${cfg.video_res_width}x${cfg.video_res_height}`;
    const opts = list.map((m) => [`${m.width}x${m.height}`, `${m.width} × ${m.height}${m.height >= 1080 ? ' (Full HD)' : m.height >= 720 ? ' (HD)' : ''}`]);
    if (!opts.some(([v]) => v === cur)) opts.unshift([cur, `${cfg.video_res_width} × ${cfg.video_res_height} (current)`]);
    const res = select('cfg-resolution', opts, cur);
    const fpsFor = (wh) => {
      const m = list.find((x) => `${x.width}x${x.height}` === wh);
      const fps = m && m.fps.length ? [...m.fps] : [60, 30, 25, 20, 15, 10, 5];
      return fps;
    };
    const fpsSel = h('select', { id: 'cfg-video_fps' });
    const fillFps = (keep) => {
      const fps = fpsFor(res.value);
      const want = keep ?? cfg.video_fps;
      const o = fps.map((f) => [f, `${f} fps`]);
      if (!fps.includes(want)) o.push([want, `${want} fps (current)`]);
      fpsSel.replaceChildren(...o.map(([v, t]) => h('option', { value: String(v), text: t })));
      fpsSel.value = String(fps.includes(want) || want === cfg.video_fps ? want : fps[0]);
    };
    fillFps();
    res.addEventListener('change', () => { fillFps(Number(fpsSel.value)); clearError('video_res_width'); dirty(); });
    fpsSel.addEventListener('change', () => { clearError('video_fps'); dirty(); });
    const errR = h('div', { class: 'ferr', id: 'cfg-video_res_width-err', role: 'alert', hidden: true });
    const errF = h('div', { class: 'ferr', id: 'cfg-video_fps-err', role: 'alert', hidden: true });
    const src = modes && modes.device ? `The sizes ${modes.card || modes.device} offers.` : 'The test pattern and files take any size.';
    const wR = fieldWrap('video_res_width', 'Resolution', res, src, errR);
    const wF = fieldWrap('video_fps', 'Frame rate', fpsSel, null, errF);
    const getRes = () => { const [w, hh] = res.value.split('x').map(Number); return { video_res_width: w, video_res_height: hh }; };
    fields.set('video_res_width', { get: getRes, check: () => null, wrap: wR, err: errR, input: res });
    fields.set('video_fps', { get: () => ({ video_fps: Number(fpsSel.value) }), check: () => null, wrap: wF, err: errF, input: fpsSel });
    const out = [wR, wF];
    if ('video_codec' in cfg) {
      const codec = select('cfg-video_codec', [['h264', 'H.264: plays on phones and PCs (recommended)'], ['mjpeg', 'Motion JPEG: every frame a picture']], cfg.video_codec);
      codec.addEventListener('change', () => { dirty(); capHint(); });
      const errC = h('div', { class: 'ferr', id: 'cfg-video_codec-err', role: 'alert', hidden: true });
      const wC = fieldWrap('video_codec', 'Recording format', codec, null, errC);
      fields.set('video_codec', { get: () => ({ video_codec: codec.value }), check: () => null, wrap: wC, err: errC, input: codec });
      out.push(wC);
    }
    return out;
  }

  /** The speed unit of the exports' subtitles and the player. */
  function unitField(cfg) {
    const sel = select('cfg-speed_unit', [['kmh', 'km/h'], ['mph', 'mph']], cfg.speed_unit);
    sel.addEventListener('change', () => { clearError('speed_unit'); dirty(); });
    const err = h('div', { class: 'ferr', id: 'cfg-speed_unit-err', role: 'alert', hidden: true });
    const w = fieldWrap('speed_unit', 'Speed unit', sel, 'In exported videos and the player.', err);
    fields.set('speed_unit', { get: () => ({ speed_unit: sel.value }), check: () => null, wrap: w, err, input: sel });
    return w;
  }

  /** Loop length in minutes (segment_length_s); a saved value that isn't whole minutes stays. */
  function loopField(cfg) {
    const s = cfg.segment_length_s;
    const opts = LOOP_MIN.map((m) => [m * 60, `${m} min`]);
    if (!opts.some(([v]) => v === s)) opts.unshift([s, `${fmtDur(s)} (current)`]);
    const sel = select('cfg-segment_length_s', opts, s);
    sel.addEventListener('change', () => { clearError('segment_length_s'); dirty(); });
    const err = h('div', { class: 'ferr', id: 'cfg-segment_length_s-err', role: 'alert', hidden: true });
    const w = fieldWrap('segment_length_s', 'Loop length', sel, 'Footage is kept in files of this length; the oldest file goes first when space runs out.', err);
    fields.set('segment_length_s', { get: () => ({ segment_length_s: Number(sel.value) }), check: () => null, wrap: w, err, input: sel });
    return w;
  }

  /** "About N hours fit": the cap over the bitrate measured on the last hour's segments. */
  async function measureRate() {
    try {
      const now = Date.now();
      const r = await api(`/api/segments?from=${iso(now - 3600000)}&to=${iso(now + 60000)}`);
      let bytes = 0, secs = 0;
      for (const s of r.segments || []) {
        const d = (s.end_ms - s.start_ms) / 1000;
        if (d > 0.5 && s.bytes) { bytes += s.bytes; secs += d; }
      }
      rate = secs >= 5 ? bytes / secs : null;
    } catch { rate = null; }
    capHint();
  }
  function capHint() {
    const f = fields.get('storage_cap_gb');
    if (!f) return;
    let el = $('#cap-hours');
    if (!el) { el = h('div', { class: 'help', id: 'cap-hours' }); f.wrap.append(el); }
    const gb = f.get().storage_cap_gb;
    if (!rate || !Number.isFinite(gb)) { el.textContent = rate ? '' : 'How much fits shows here once a few seconds are recorded.'; return; }
    const secs = (gb * 1024 ** 3) / rate;
    el.textContent = `About ${fmtDur(secs)} of footage fit in ${fmtBytes(gb * 1024 ** 3)} at the ${(rate * 8 / 1e6).toFixed(1)} Mbit/s recorded now.`;
  }

  function changed() {
    const out = {};
    for (const f of fields.values()) {
      for (const [k, v] of Object.entries(f.get())) {
        const was = loaded[k];
        const same = typeof v === 'number' && typeof was === 'number' ? Math.abs(v - was) < 1e-9
          : typeof v === 'object' ? JSON.stringify(v) === JSON.stringify(was) : v === was;
        if (!same) out[k] = v;
      }
    }
    return out;
  }
  function dirty() {
    const n = Object.keys(changed()).length;
    saveBtn.disabled = n === 0;
    msgEl.textContent = n ? `${n} unsaved change${n > 1 ? 's' : ''}` : '';
    msgEl.className = 'msg muted';
  }
  function clearError(key) { const f = fields.get(key); if (f) { f.err.hidden = true; f.wrap.classList.remove('bad'); } }
  function showError(key, text) {
    if (key === 'video_res_height') key = 'video_res_width';
    const f = fields.get(key);
    if (!f) { msgEl.textContent = text; msgEl.className = 'msg err'; return; }
    const adv = f.wrap.closest('details');
    if (adv) adv.open = true;
    f.err.textContent = text; f.err.hidden = false; f.wrap.classList.add('bad');
    f.input.scrollIntoView({ block: 'center', behavior: 'smooth' });
    f.input.focus({ preventScroll: true });
    msgEl.textContent = 'Not saved: fix the marked field.'; msgEl.className = 'msg err';
  }
  /** The API's `config key "video_fps": 500 is out of range (allowed 1..=120)` in words. */
  function plain(key, msg) {
    const label = LABELS[key] || key;
    return msg.replace(/^config key "[^"]+":\s*/, `${label}: `).replace(/\(allowed (\S+)\.\.=(\S+)\)/, '(from $1 to $2)');
  }

  async function save(e) {
    e.preventDefault();
    for (const k of fields.keys()) clearError(k);
    // Checked here first, in words: nothing is sent while a field is wrong.
    for (const [k, f] of fields) { const bad = f.check(); if (bad) return showError(k, bad); }
    const body = changed();
    if (!Object.keys(body).length) { msgEl.textContent = 'Nothing changed.'; msgEl.className = 'msg muted'; return; }
    saveBtn.disabled = true;
    msgEl.textContent = 'Saving…'; msgEl.className = 'msg muted';
    try {
      const r = await api('/api/config', { method: 'PUT', body });
      render(r.config || { ...loaded, ...body });
      const later = (r.next_start || []).length ? ` ${r.next_start.map((k) => LABELS[k] || k).join(' and ')}: at the next start of blackbox.` : '';
      msgEl.textContent = (r.applied === 'restarted' ? 'Saved. The recorder restarted to apply it.' : 'Saved and applied.') + later;
      msgEl.className = 'msg ok';
    } catch (err) {
      saveBtn.disabled = false;
      if (err.status === 400) showError(err.key, plain(err.key, err.message));
      else { msgEl.textContent = `Not saved: ${err.message}`; msgEl.className = 'msg err'; }
    }
  }

  function render(cfg) {
    loaded = cfg;
    fields.clear();
    const rows = (list) => list.filter(([k]) => k in cfg).map(([k, label, o]) => plainField(k, label, o, cfg[k]));
    const video = h('fieldset', {}, h('legend', { text: 'Video' }), videoFields(cfg), rows(VIDEO_EXTRA));
    const storage = h('fieldset', {}, h('legend', { text: 'Loop recording' }), 'segment_length_s' in cfg ? loopField(cfg) : null, rows(STORAGE));
    const evRows = rows(EVENTS);
    const events = evRows.length ? h('fieldset', {}, h('legend', { text: 'Events and parking' }), evRows) : null;
    const gpsRows = rows(GPS);
    const gps = 'speed_unit' in cfg || gpsRows.length ? h('fieldset', {}, h('legend', { text: 'GPS and sound' }), 'speed_unit' in cfg ? unitField(cfg) : null, gpsRows) : null;
    const cams = Array.isArray(cfg.cameras) ? h('fieldset', { id: 'cameras' }, h('legend', { text: 'More cameras' }), camerasField(cfg.cameras)) : null;
    const known = new Set([...fields.keys(), 'video_res_height', 'cameras']);
    for (const [k] of ADVANCED) known.add(k);
    const other = Object.keys(cfg).filter((k) => !known.has(k) && ['string', 'number', 'boolean'].includes(typeof cfg[k]));
    const adv = h('details', { class: 'advanced', id: 'advanced' }, h('summary', { text: 'Advanced' }),
      h('p', { class: 'warn', text: 'For the network, the sync to the card and the camera device. A wrong value here can stop the recording or lock you out of this page; change them only if you know why.' }),
      h('fieldset', {}, rows(ADVANCED), other.map((k) => plainField(k, k, {}, cfg[k]))));
    form.replaceChildren(h('div', { class: 'settings-grid' }, video, h('div', {}, storage, events, gps)), cams, adv, foot);
    saveBtn.disabled = true;
    capHint();
  }

  // --- this device: Wi-Fi and passwords, erase, reboot -------------------------------------------
  async function device(note = '') {
    let c;
    try { c = await api('/api/device/credentials'); } catch (e) { devBox.replaceChildren(h('p', { class: 'err', text: `Could not load the device settings: ${e.message}` })); return; }
    const err = h('div', { class: 'ferr', id: 'dev-err', role: 'alert', hidden: true });
    const msg = h('p', { class: note ? 'msg ok' : 'msg', id: 'dev-msg', role: 'status', text: note });
    const input = (id, label, type, value, help) => {
      const i = h('input', { id, type, value: value || '', autocomplete: type === 'password' ? 'new-password' : 'off', autocapitalize: 'off', spellcheck: 'false' });
      const show = type === 'password' ? h('button', { class: 'btn small ghost', type: 'button', text: 'Show', 'aria-controls': id, onclick: (ev) => { i.type = i.type === 'password' ? 'text' : 'password'; ev.target.textContent = i.type === 'password' ? 'Show' : 'Hide'; } }) : null;
      return [i, h('div', { class: 'field' }, h('label', { for: id, text: label }), h('div', { class: 'inrow' }, i, show), help ? h('div', { class: 'help', text: help }) : null)];
    };
    const parts = [];
    const ins = {};
    if (c.appliance) {
      const [n, nw] = input('dev-wifi_ssid', 'Wi-Fi name', 'text', c.wifi_ssid, '1 to 32 characters.');
      ins.wifi_ssid = n; parts.push(nw);
      const [p, pw] = input('dev-wifi_passphrase', 'Wi-Fi password', 'password', '', '8 to 63 characters. Empty: unchanged.');
      ins.wifi_passphrase = p; parts.push(pw);
      const [cc, cw] = input('dev-wifi_country', 'Country (two letters)', 'text', c.wifi_country || '', 'Like US or DE: the Wi-Fi then uses the channels allowed there.');
      ins.wifi_country = cc; parts.push(cw);
      const hs = c.home_wifi || '';
      const state = !c.home_wifi_ssid ? 'No home Wi-Fi set.' : hs.startsWith('home') ? `Connected to ${c.home_wifi_ssid} (address ${hs.split(' ')[2] || 'none yet'}).` : hs === 'joining' ? `Joining ${c.home_wifi_ssid}…` : `${c.home_wifi_ssid} is not in range.`;
      const [hn, hnw] = input('dev-home_wifi_ssid', 'Home Wi-Fi name', 'text', c.home_wifi_ssid, `For copying footage and sending alerts when the car is home. ${state}`);
      ins.home_wifi_ssid = hn; parts.push(hnw);
      const [hp, hpw] = input('dev-home_wifi_passphrase', 'Home Wi-Fi password', 'password', '', '8 to 63 characters. Empty: unchanged.');
      ins.home_wifi_passphrase = hp; parts.push(hpw);
    }
    const [dp, dw] = input('dev-dashboard_password', 'Dashboard password', 'password', '', '8 to 64 characters. Empty: unchanged.');
    ins.dashboard_password = dp; parts.push(dw);
    const pending = (c.pending || []).length ? h('p', { class: 'muted', id: 'dev-pending', text: `Waiting for the next start: ${c.pending.map((k) => ({ wifi_ssid: 'Wi-Fi name', wifi_passphrase: 'Wi-Fi password', wifi_country: 'country', dashboard_password: 'dashboard password', home_wifi_ssid: 'home Wi-Fi name', home_wifi_passphrase: 'home Wi-Fi password' }[k] || k)).join(', ')}.` }) : null;
    const checks = {
      wifi_ssid: (v) => (v.length >= 1 && v.length <= 32 ? null : 'The Wi-Fi name must be 1 to 32 characters.'),
      wifi_passphrase: (v) => (v.length >= 8 && v.length <= 63 ? null : 'The Wi-Fi password must be 8 to 63 characters.'),
      wifi_country: (v) => (v === '' || /^[A-Za-z]{2}$/.test(v) ? null : 'The country must be two letters, like US or DE.'),
      dashboard_password: (v) => (v.length >= 8 && v.length <= 64 ? null : 'The dashboard password must be 8 to 64 characters.'),
      home_wifi_ssid: (v) => (v.length <= 32 ? null : 'The home Wi-Fi name must be up to 32 characters.'),
      home_wifi_passphrase: (v) => (v.length >= 8 && v.length <= 63 ? null : 'The home Wi-Fi password must be 8 to 63 characters.'),
    };
    const saveDev = async (ev) => {
      ev.preventDefault();
      err.hidden = true; msg.textContent = '';
      const body = {};
      for (const [k, i] of Object.entries(ins)) {
        const v = i.value;
        if (k === 'wifi_ssid' ? v === (c.wifi_ssid || '') : k === 'home_wifi_ssid' ? v === (c.home_wifi_ssid || '') : k === 'wifi_country' ? v.toUpperCase() === (c.wifi_country || '') : v === '') continue;
        if (/[^\x20-\x7e]/.test(v)) { err.textContent = 'Use plain characters only (letters, digits, spaces, punctuation).'; err.hidden = false; i.focus(); return; }
        if (v.trim() !== v) { err.textContent = 'No spaces at the start or the end, please.'; err.hidden = false; i.focus(); return; }
        const bad = checks[k](v);
        if (bad) { err.textContent = bad; err.hidden = false; i.focus(); return; }
        body[k] = v;
      }
      if (!Object.keys(body).length) { msg.textContent = 'Nothing changed.'; return; }
      try {
        await api('/api/device/credentials', { method: 'PUT', body });
        device(c.appliance ? 'Saved. It applies when the dash cam next starts: reboot it, or it happens at the next drive. Phones then join the new Wi-Fi with the new password.' : 'Saved. The new dashboard password applies when blackbox next starts.');
      } catch (e) { err.textContent = e.message; err.hidden = false; }
    };
    const confirmRow = (id, text, label, go) => {
      const row = h('div', { class: 'confirm', id: `${id}-confirm`, hidden: true }, h('p', { class: 'warn', text }),
        h('div', { class: 'btn-row' }, h('button', { class: 'btn ghost', type: 'button', text: 'Cancel', onclick: () => { row.hidden = true; } }),
          h('button', { class: 'btn danger', type: 'button', id: `${id}-go`, text: label, onclick: go })));
      return row;
    };
    const erase = async () => {
      try { await api('/api/storage/erase', { method: 'POST', body: { confirm: 'erase' } }); toast('Every recording was erased. Recording goes on.'); $('#erase-confirm').hidden = true; measureRate(); } catch (e) { toast(e.message, true); }
    };
    const reboot = async () => {
      try { await api('/api/device/reboot', { method: 'POST', body: { confirm: 'reboot' } }); toast('Rebooting: back in about a minute.'); $('#reboot-confirm').hidden = true; } catch (e) { toast(e.message, true); }
    };
    devBox.replaceChildren(
      h('form', { class: 'card', id: 'device-form', onsubmit: saveDev, novalidate: true }, h('h3', { text: c.appliance ? 'Wi-Fi and passwords' : 'Dashboard password' }),
        c.appliance ? null : h('p', { class: 'muted', text: 'blackbox runs on a computer here: its Wi-Fi is the computer’s.' }),
        parts, pending, err, msg, h('div', { class: 'btn-row' }, h('button', { class: 'btn primary', type: 'submit', id: 'save-device', text: 'Save' }))),
      h('div', { class: 'card', id: 'danger' }, h('h3', { text: 'Card and device' }),
        h('div', { class: 'btn-row' },
          h('button', { class: 'btn', type: 'button', id: 'erase', text: 'Erase all recordings…', onclick: () => { $('#erase-confirm').hidden = false; } }),
          c.appliance ? h('button', { class: 'btn', type: 'button', id: 'reboot', text: 'Reboot…', onclick: () => { $('#reboot-confirm').hidden = false; } }) : null),
        confirmRow('erase', 'This deletes every recording on the card, protected footage and events included. It cannot be undone.', 'Erase everything', erase),
        c.appliance ? confirmRow('reboot', 'The dash cam stops recording for about a minute while it restarts.', 'Reboot now', reboot) : null));
  }

  return {
    async enter() {
      if (!form) {
        msgEl = h('span', { class: 'msg', id: 'settings-msg', role: 'status' });
        saveBtn = h('button', { class: 'btn primary', type: 'submit', id: 'save-settings', text: 'Save' });
        const revert = h('button', { class: 'btn ghost', type: 'button', text: 'Undo changes', onclick: () => { render(loaded); msgEl.textContent = ''; } });
        foot = h('div', { class: 'form-foot' }, msgEl, revert, saveBtn);
        form = h('form', { id: 'settings-form', novalidate: true, onsubmit: save });
        devBox = h('div', { class: 'device-box', id: 'device' });
        root.append(form, devBox);
      }
      if (loaded && Object.keys(changed()).length) return; // keep unsaved edits
      form.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
      try {
        const [cfg, m] = await Promise.all([api('/api/config'), api('/api/camera/modes').catch(() => null)]);
        modes = m;
        render(cfg);
        msgEl.textContent = '';
      } catch (e) { form.replaceChildren(h('p', { class: 'empty err', text: `Could not load the settings: ${e.message}` })); }
      measureRate();
      clearInterval(rateTimer);
      // The bitrate is measured again while the page is open (a fresh store has none yet).
      rateTimer = setInterval(() => { if (current === 'settings' && !document.hidden) measureRate(); }, rate ? 30000 : 4000);
      device();
    },
    leave() { clearInterval(rateTimer); },
  };
})();
