import { h, api, fmtBytes, fmtTime, tms, toast } from './util.js';

// ---------------------------------------------------------------------------------------------
// Offload at home (System page): where copies go, what is copied, and how far it got.
// The secret key is write-only: the page never has it, an empty field keeps the saved one.

const FIELDS = [
  ['offload', 'What to copy', 'select', [['off', 'Nothing (off)'], ['events', 'Events and protected footage'], ['all', 'Everything (needs constant power)']]],
  ['s3_endpoint', 'S3 server', 'text', 'https://s3.eu-central-1.amazonaws.com'],
  ['s3_bucket', 'Bucket', 'text', 'my-dashcam'],
  ['s3_region', 'Region', 'text', 'us-east-1'],
  ['s3_prefix', 'Folder in the bucket', 'text', 'blackbox'],
  ['device_name', 'This car\u2019s folder', 'text', 'car'],
  ['s3_access_key', 'Access key', 'text', ''],
  ['s3_secret_key', 'Secret key', 'password', ''],
  ['offload_kbps', 'Upload limit, kbit/s (0: none)', 'number', '0'],
  ['s3_ca_file', 'Own CA file for https (a NAS; empty: the usual CAs)', 'text', '/boot/nas-ca.pem'],
  ['s3_allow_http', 'Allow plain http:// (a trusted home network only)', 'checkbox'],
];

const STATES = {
  off: 'Off',
  idle: 'Up to date: every copy due is made and verified',
  uploading: 'Copying',
  waiting: 'Waiting to try again',
  error: 'Needs you',
};

let el = null;

function field([key, label, type, extra]) {
  const id = `off-${key}`;
  let input;
  if (type === 'select') input = h('select', { id, name: key }, extra.map(([v, t]) => h('option', { value: v, text: t })));
  else if (type === 'checkbox') input = h('input', { id, name: key, type: 'checkbox' });
  else input = h('input', { id, name: key, type, placeholder: extra || undefined, autocomplete: type === 'password' ? 'new-password' : 'off', spellcheck: 'false', autocapitalize: 'none' });
  el.inputs[key] = input;
  if (type === 'checkbox') return h('div', { class: 'field', 'data-key': key }, h('div', { class: 'inrow' }, h('label', { for: id, text: label, class: 'grow' }), h('span', { class: 'switch' }, input, h('span'))));
  return h('div', { class: 'field', 'data-key': key }, h('label', { for: id, text: label }), input);
}

async function load() {
  try {
    const r = await api('/api/offload');
    for (const [key, , type] of FIELDS) {
      const i = el.inputs[key];
      if (key === 's3_secret_key') i.placeholder = r.settings.s3_secret_key_set ? 'saved (leave empty to keep it)' : 'not set';
      else if (type === 'checkbox') i.checked = !!r.settings[key];
      else i.value = String(r.settings[key] ?? '');
    }
    updateOffload(r.status);
  } catch (e) { el.msg.textContent = e.message; el.msg.className = 'msg err'; }
}

async function save() {
  const body = {};
  for (const [key, , type] of FIELDS) {
    const i = el.inputs[key];
    if (type === 'checkbox') body[key] = i.checked;
    else if (type === 'number') body[key] = Number(i.value || 0);
    else if (key !== 's3_secret_key' || i.value) body[key] = i.value.trim();
  }
  for (const f of el.card.querySelectorAll('.field.bad')) f.classList.remove('bad');
  try {
    await api('/api/offload', { method: 'PUT', body });
    el.inputs.s3_secret_key.value = '';
    el.msg.textContent = 'Saved.'; el.msg.className = 'msg ok';
    load();
  } catch (e) {
    el.msg.textContent = `Not saved: ${e.message}`; el.msg.className = 'msg err';
    if (e.key) el.card.querySelector(`.field[data-key="${e.key}"]`)?.classList.add('bad');
  }
}

async function test() {
  el.msg.textContent = 'Trying the server\u2026'; el.msg.className = 'msg';
  try {
    const r = await api('/api/offload/test', { method: 'POST' });
    el.msg.textContent = r.ok ? `Works: ${r.message}` : `Does not work: ${r.message}`;
    el.msg.className = r.ok ? 'msg ok' : 'msg err';
  } catch (e) { el.msg.textContent = e.message; el.msg.className = 'msg err'; }
}

async function runNow() {
  try { await api('/api/offload/run', { method: 'POST' }); toast('Offload started'); } catch (e) { toast(e.message, true); }
}

/** The card, built once by the System page. */
export function offloadCard() {
  el = { inputs: {} };
  el.state = h('strong', { id: 'off-state', text: '–' });
  el.facts = h('p', { class: 'muted', id: 'off-facts' });
  el.err = h('p', { class: 'err', id: 'off-error', hidden: true });
  el.msg = h('p', { class: 'msg', id: 'off-msg', role: 'status' });
  el.card = h('div', { class: 'card', id: 'card-offload' }, h('h3', { text: 'Offload at home' }),
    h('p', { class: 'muted', text: 'Copies footage to S3-compatible storage (AWS, Backblaze B2, Wasabi, a NAS app) when a network is there. A copy counts once it is read back and verified; only then may the card reuse that footage first.' }),
    h('div', { class: 'inrow spread' }, h('span', { class: 'muted', text: 'State' }), el.state), el.facts, el.err,
    FIELDS.map(field),
    h('div', { class: 'inrow wrap' },
      h('button', { class: 'btn primary', type: 'button', id: 'off-save', text: 'Save', onclick: save }),
      h('button', { class: 'btn', type: 'button', id: 'off-test', text: 'Test the server', onclick: test }),
      h('button', { class: 'btn', type: 'button', id: 'off-run', text: 'Offload now', onclick: runNow })),
    el.msg);
  load();
  return el.card;
}

/** The state part of `/api/status` (`offload`). */
export function updateOffload(o) {
  if (!el || !o) return;
  el.state.textContent = o.state === 'uploading' && o.current ? `${STATES.uploading} ${o.current.slice(0, 19)}` : (STATES[o.state] || o.state);
  const bits = [`${o.verified} segment${o.verified === 1 ? '' : 's'} verified`, `${o.queued} waiting (${fmtBytes(o.queued_bytes)})`];
  if (o.bytes_sent) bits.push(`${fmtBytes(o.bytes_sent)} sent since start`);
  if (o.last_success) bits.push(`last copy ${fmtTime(tms(o.last_success), { date: true })}`);
  if (o.lost_before_offload) bits.push(`${o.lost_before_offload} protected segment(s) deleted before they were copied`);
  el.facts.textContent = o.state === 'off' ? 'Nothing is copied.' : bits.join(' · ');
  el.err.hidden = !o.last_error;
  el.err.textContent = o.last_error ? `Last failure: ${o.last_error}` : '';
}
