import { $, h, api } from './util.js';
import { views } from './nav.js';

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
