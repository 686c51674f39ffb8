import { $, h, toast, api, fmtTime, tms, fmtDur, eventKind } from './util.js';
import { views } from './nav.js';

// ---------------------------------------------------------------------------------------------
// Events: impacts, "Save incident", motion and bumps while parked (/api/incidents)


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
