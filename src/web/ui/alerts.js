import { h, api, fmtTime, tms } from './util.js';
import { formCard } from './formcard.js';

// ---------------------------------------------------------------------------------------------
// Alerts (System page): where to hear about events and faults — a webhook (ntfy, Discord,
// Slack, any JSON receiver) and/or e-mail. The mail password is write-only.

const FIELDS = [
  ['webhook_url', 'Webhook URL (empty: none)', 'text', 'https://ntfy.sh/my-dashcam'],
  ['webhook_format', 'Webhook kind', 'select', [['json', 'JSON'], ['ntfy', 'ntfy'], ['discord', 'Discord'], ['slack', 'Slack']]],
  ['smtp_server', 'Mail server (empty: no e-mail)', 'text', 'smtp.example.com:587'],
  ['smtp_security', 'Mail encryption', 'select', [['starttls', 'STARTTLS (port 587)'], ['tls', 'TLS (port 465)'], ['none', 'None (home relay only)']]],
  ['smtp_user', 'Mail user name', 'text', ''],
  ['smtp_password', 'Mail password', 'password', ''],
  ['smtp_from', 'From address', 'text', 'dashcam@example.com'],
  ['smtp_to', 'To (commas between addresses)', 'text', 'me@example.com'],
  ['alert_camera_lost_s', 'Alert when the camera is lost for, seconds', 'number', '60'],
  ['alerts_ca_file', 'Own CA file (empty: the usual CAs)', 'text', ''],
];

const el = {};

const test = (channel) => async (c) => {
  c.msg(`Sending a test by ${channel}\u2026`);
  try {
    const r = await api('/api/alerts/test', { method: 'POST', body: { channel } });
    c.msg(r.ok ? `Works: ${r.message}` : `Does not work: ${r.message}`, r.ok ? 'ok' : 'err');
  } catch (e) { c.msg(e.message, 'err'); }
};

/** The card, built once by the System page. */
export function alertsCard() {
  el.facts = h('p', { class: 'muted', id: 'alerts-facts' });
  el.err = h('p', { class: 'err', id: 'alerts-error', hidden: true });
  return formCard({
    id: 'alerts', title: 'Alerts', route: '/api/alerts', fields: FIELDS, secrets: [['smtp_password', 'smtp_password_set']],
    intro: 'Events, the camera lost, restarts, card and storage trouble, offload results. Alerts wait on the card while there is no network and go out when there is.',
    head: [el.facts, el.err],
    buttons: [['alerts-test-webhook', 'Test the webhook', test('webhook')], ['alerts-test-email', 'Test e-mail', test('email')]],
    onStatus: updateAlerts,
  }).el;
}

/** The state part of `/api/status` (`alerts`). */
export function updateAlerts(a) {
  if (!el.facts || !a) return;
  const bits = [`${a.queued} waiting`, `${a.sent} sent since start`];
  if (a.last_sent) bits.push(`last ${fmtTime(tms(a.last_sent), { date: true })}`);
  if (a.dropped) bits.push(`${a.dropped} dropped (too many waiting)`);
  el.facts.textContent = bits.join(' · ');
  el.err.hidden = !a.last_error;
  el.err.textContent = a.last_error ? `Last failure: ${a.last_error}` : '';
}
