import { h, api, fmtBytes, fmtTime, tms, toast } from './util.js';
import { formCard } from './formcard.js';

// ---------------------------------------------------------------------------------------------
// Offload at home (System page): where copies go, what is copied, and how far it got.
// The secret key is write-only: the page never has it, an empty field keeps the saved one.

const FIELDS = [
  ['offload', 'What to copy', 'select', [['off', 'Nothing (off)'], ['events', 'Events and protected footage'], ['all', 'Everything (needs constant power)']]],
  ['offload_target', 'Copy to', 'select', [['s3', 'S3-compatible storage'], ['rsync', 'A NAS by rsync']]],
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
  ['rsync_dest', 'rsync: where (rsync://user@nas/module or user@nas:/path)', 'text', 'rsync://cam@nas.local/dashcam'],
  ['rsync_password', 'rsync: daemon password', 'password', ''],
  ['rsync_ssh_key', 'rsync over SSH: key file on the device', 'text', '/boot/nas_key'],
  ['rsync_ssh_port', 'rsync over SSH: port', 'number', '22'],
];

const STATES = {
  off: 'Off',
  idle: 'Up to date: every copy due is made and verified',
  uploading: 'Copying',
  waiting: 'Waiting to try again',
  error: 'Needs you',
};

const el = {};

/** The card, built once by the System page. */
export function offloadCard() {
  el.state = h('strong', { id: 'off-state', text: '–' });
  el.facts = h('p', { class: 'muted', id: 'off-facts' });
  el.err = h('p', { class: 'err', id: 'off-error', hidden: true });
  const card = formCard({
    id: 'off', title: 'Offload at home', route: '/api/offload', fields: FIELDS, secrets: [['s3_secret_key', 's3_secret_key_set'], ['rsync_password', 'rsync_password_set']],
    intro: 'Copies footage to S3-compatible storage (AWS, Backblaze B2, Wasabi, a NAS app) or to a NAS by rsync when a network is there. A copy counts once it is read back and verified; only then may the card reuse that footage first.',
    head: [h('div', { class: 'inrow spread' }, h('span', { class: 'muted', text: 'State' }), el.state), el.facts, el.err],
    buttons: [
      ['off-test', 'Test the server', async (c) => {
        c.msg('Trying the server\u2026');
        try {
          const r = await api('/api/offload/test', { method: 'POST' });
          c.msg(r.ok ? `Works: ${r.message}` : `Does not work: ${r.message}`, r.ok ? 'ok' : 'err');
        } catch (e) { c.msg(e.message, 'err'); }
      }],
      ['off-run', 'Offload now', async () => {
        try { await api('/api/offload/run', { method: 'POST' }); toast('Offload started'); } catch (e) { toast(e.message, true); }
      }],
    ],
    onStatus: updateOffload,
  });
  card.el.id = 'card-offload';
  return card.el;
}

/** The state part of `/api/status` (`offload`). */
export function updateOffload(o) {
  if (!el.state || !o) return;
  el.state.textContent = o.state === 'uploading' && o.current ? `${STATES.uploading} ${o.current.slice(0, 19)}` : (STATES[o.state] || o.state);
  const bits = [`${o.verified} segment${o.verified === 1 ? '' : 's'} verified`, `${o.queued} waiting (${fmtBytes(o.queued_bytes)})`];
  if (o.bytes_sent) bits.push(`${fmtBytes(o.bytes_sent)} sent since start`);
  if (o.last_success) bits.push(`last copy ${fmtTime(tms(o.last_success), { date: true })}`);
  if (o.lost_before_offload) bits.push(`${o.lost_before_offload} protected segment(s) deleted before they were copied`);
  el.facts.textContent = o.state === 'off' ? 'Nothing is copied.' : bits.join(' · ');
  el.err.hidden = !o.last_error;
  el.err.textContent = o.last_error ? `Last failure: ${o.last_error}` : '';
}
