import { $, h, icon, api, camq, zone, fmtTime, fmtDay, dayKey, dayRange, iso, tms, fmtDur, fmtBytes, zoneSwitch, spans, segRanges, barFill } from './util.js';
import { lastStatus } from './status.js';
import { views } from './nav.js';

views.recordings = (() => {
  const root = $('#view-recordings');
  let shownSegs = [];
  const segsIn = (a, b) => shownSegs.filter((x) => tms(x.end_ms ?? x.end) >= a && tms(x.start_ms ?? x.start) < b);
  let day = null, dateInput, body, protOnly = localStorage.getItem('bb.protOnly') === '1';

  function go(key) { location.hash = `recordings?day=${key}`; }
  function shift(n) { const [a] = dayRange(day); go(dayKey(a + n * 86400000 + 3600000 * (n < 0 ? 0 : 2))); }

  async function load() {
    const [a, b] = dayRange(day);
    dateInput.value = day;
    body.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
    let segs, prot;
    try {
      const [sr, pr] = await Promise.all([api(camq(`/api/segments?from=${iso(a)}&to=${iso(b)}`)), api(camq('/api/protected')).catch(() => ({ ranges: [] }))]);
      segs = sr.segments || []; prot = (pr.ranges || []).map((r) => ({ from: tms(r.from), to: tms(r.to) }));
    } catch (e) {
      body.replaceChildren(h('p', { class: 'empty err', text: `Could not load recordings: ${e.message}` }));
      return;
    }
    const allSegs = segs.length;
    shownSegs = protOnly ? segs.filter((x) => x.protected) : segs;
    if (protOnly) segs = segs.filter((s) => s.protected);
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
      // Tap the hour's label: its minutes, full width, with the thumbnails of its segments.
      const row = h('div', { class: 'hour', 'data-hour': String(t) });
      const lbl = h('button', { class: 'lbl zoom', type: 'button', 'aria-expanded': 'false', 'aria-label': `The minutes of ${fmtTime(t, { secs: false })}`, text: `${fmtTime(t, { secs: false, label: false })} ▸` });
      lbl.addEventListener('click', () => toggleHour(row, lbl, t, t1, foot, prot, pick));
      row.append(lbl, bar);
      hours.append(row);
    }
    flush();

    const segItem = (s) => {
      const [s0, s1] = [tms(s.start_ms ?? s.start), tms(s.end_ms ?? s.end)];
      return h('li', {},
        h('a', { class: 'thumb', href: `#player?t=${s0}`, 'aria-label': `Play from ${fmtTime(s0)}` },
          h('img', { src: camq(`/api/segments/${s.id}/thumb.jpg`), alt: '', loading: 'lazy', width: '96', height: '54', decoding: 'async' })),
        h('span', { class: 'when', text: `${fmtTime(s0)} – ${fmtTime(s1, { label: false })}` }),
        s.protected ? h('span', { class: 'badge prot', text: 'PROTECTED' }) : null,
        s.open ? h('span', { class: 'badge open', text: 'RECORDING' }) : null,
        h('span', { class: 'meta', text: `${fmtDur((s.footage_ms ?? (s1 - s0)) / 1000)} · ${s.frames} frames · ${fmtBytes(s.bytes)}${(s.gaps || []).length ? ` · ${s.gaps.length} gap${s.gaps.length > 1 ? 's' : ''}` : ''}` }),
        h('a', { class: 'btn small', href: `#player?t=${s0}` }, icon('play'), 'Play'),
        h('a', { class: 'btn small ghost', href: camq(`/api/segments/${s.id}/export.mp4`), download: '', 'aria-label': 'Download segment (MP4)', title: 'Download (MP4)' }, icon('download')));
    };
    const newest = segs.slice().reverse();
    const SHOWN = 12;
    const list = h('ul', { class: 'seglist', id: 'seglist' }, newest.slice(0, SHOWN).map(segItem));
    const more = newest.length > SHOWN ? h('button', { class: 'btn small ghost', type: 'button', text: `Show all ${newest.length} segments`, onclick: () => { list.append(...newest.slice(SHOWN).map(segItem)); more.remove(); } }) : null;
    const filter = h('label', { class: 'check', for: 'prot-only' },
      h('input', { type: 'checkbox', id: 'prot-only', onchange: (e) => { protOnly = e.target.checked; localStorage.setItem('bb.protOnly', protOnly ? '1' : '0'); load(); } }), ' Protected only');
    filter.firstChild.checked = protOnly;
    const none = protOnly && allSegs ? `No protected footage on this day (${allSegs} segment${allSegs > 1 ? 's' : ''} unprotected).` : 'Nothing was recorded on this day. Pick another day above.';
    body.replaceChildren(sum, h('div', { class: 'row legend-row' }, legend, filter), hours, h('div', { class: 'spacer' }),
      segs.length ? h('div', { class: 'card' }, h('h3', { text: `${protOnly ? 'Protected segments' : 'Segments'}, newest first (${zone.label})` }), list, more) : h('p', { class: 'empty', id: 'seg-none', text: none }));
  }

  /** An hour opened to its minutes: a full-width bar with a tick every 5 min, and a strip of
   *  its segments' thumbnails; the same tap-to-play. */
  function toggleHour(row, lbl, t, t1, foot, prot, pick) {
    const open = row.nextElementSibling && row.nextElementSibling.classList.contains('minutes');
    if (open) { row.nextElementSibling.remove(); lbl.setAttribute('aria-expanded', 'false'); lbl.textContent = `${fmtTime(t, { secs: false, label: false })} ▸`; return; }
    const bar = h('div', { class: 'bar big', role: 'button', tabindex: '0', 'aria-label': `Minutes of ${fmtTime(t, { secs: false })}` });
    for (let m = 5; m < 60; m += 5) {
      const tk = h('div', { class: m % 15 ? 'tick' : 'tick major' }); tk.style.left = `${(m / 60) * 100}%`; bar.append(tk);
    }
    barFill(bar, foot, prot, t, t1);
    bar.addEventListener('click', (e) => { const r = bar.getBoundingClientRect(); pick((e.clientX - r.left) / r.width); });
    const marks = h('div', { class: 'minute-marks' }, [0, 15, 30, 45].map((m) => { const sp = h('span', { text: fmtTime(t + m * 60000, { secs: false, label: false }) }); sp.style.left = `${(m / 60) * 100}%`; return sp; }));
    const inHour = foot.length ? segsIn(t, t1) : [];
    const strip = h('div', { class: 'thumbs', id: `thumbs-${t}` }, inHour.map((s) => {
      const s0 = tms(s.start_ms ?? s.start);
      return h('a', { href: `#player?t=${Math.max(s0, t)}`, class: 'thumb', title: fmtTime(s0) },
        h('img', { src: camq(`/api/segments/${s.id}/thumb.jpg`), alt: `Footage at ${fmtTime(s0)}`, loading: 'lazy', width: '128', height: '72', decoding: 'async' }),
        h('span', { text: fmtTime(Math.max(s0, t), { label: false }) }));
    }));
    row.after(h('div', { class: 'minutes', 'data-hour': String(t) }, bar, marks, strip));
    lbl.setAttribute('aria-expanded', 'true');
    lbl.textContent = `${fmtTime(t, { secs: false, label: false })} ▾`;
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
