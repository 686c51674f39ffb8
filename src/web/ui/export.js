import { $, h, icon, clamp, toast, api, camq, zone, parts, MONTHS, fmtTime, fmtDay, dayKey, dayRange, iso, tms, fmtDur, fmtBytes, zoneSwitch, segRanges, barFill, fieldDate, fieldTime, fieldsToMs } from './util.js';
import { lastStatus, setStatus } from './status.js';
import { views, current } from './nav.js';

views.export = (() => {
  const root = $('#view-export');
  const WINDOWS = [['day', 'Day'], [3600000, '1 h'], [600000, '10 min'], [120000, '2 min']];
  const PRESETS = [[30, 'Last 30 s'], [60, 'Last 1 min'], [120, 'Last 2 min'], [300, 'Last 5 min'], [900, 'Last 15 min'], [3600, 'Last hour']];
  let built = false, el = {};
  let sel = null;                 // {from, to}: Unix ms, `to` excluded (as the API)
  let pending = null;             // the first tap of "tap the start, then the end"
  let win = { len: 600000, from: 0, to: 0 }, winSegs = [], winProt = [], winSeq = 0;
  let checkTimer = 0, checkSeq = 0, checking = false, last = null; // last: {info, gaps, q} or {error}
  let drag = null;

  const newest = () => (lastStatus && lastStatus.newest ? tms(lastStatus.newest) : null);
  const query = () => `from=${encodeURIComponent(iso(sel.from))}&to=${encodeURIComponent(iso(sel.to))}`;

  // --- the timeline window -------------------------------------------------------------------
  function place(len, center) {
    win.len = len;
    if (len === 'day') {
      [win.from, win.to] = dayRange(dayKey(center));
    } else {
      win.from = Math.floor((center - len / 2) / 1000) * 1000;
      win.to = win.from + len;
    }
  }
  /** Makes the selection visible: the smallest window it fits in, not reaching far past the newest footage. */
  function fit() {
    if (!sel || (sel.from >= win.from && sel.to <= win.to)) return false;
    const L = sel.to - sel.from;
    const len = [120000, 600000, 3600000].find((l) => L <= 0.8 * l) ?? 'day';
    if (len === 'day') { place('day', sel.from); return true; }
    let from = (sel.from + sel.to) / 2 - len / 2;
    const n = newest();
    if (n !== null) from = Math.min(from, Math.max(n - 0.9 * len, sel.to - 0.95 * len));
    place(len, from + len / 2);
    return true;
  }
  function shiftWindow(dir) {
    if (win.len === 'day') place('day', dir < 0 ? win.from - 3600000 : win.to + 3600000);
    else place(win.len, (win.from + win.to) / 2 + (dir * win.len) / 2);
    loadWindow();
  }
  function setLen(len) {
    const c = sel ? (sel.from + sel.to) / 2 : (win.from + win.to) / 2;
    place(len, c);
    loadWindow();
  }

  async function loadWindow() {
    const my = ++winSeq;
    drawStrip();
    const [sr, pr] = await Promise.all([
      api(camq(`/api/segments?from=${iso(win.from)}&to=${iso(win.to)}`)).catch(() => ({ segments: [] })),
      api(camq('/api/protected')).catch(() => ({ ranges: [] })),
    ]);
    if (my !== winSeq) return;
    winSegs = segRanges(sr.segments || []);
    winProt = (pr.ranges || []).map((r) => ({ from: tms(r.from), to: tms(r.to) }));
    drawStrip();
  }

  const frac = (t) => (t - win.from) / (win.to - win.from);
  function drawStrip() {
    const { from: a, to: b } = win;
    el.strip.dataset.from = String(a);
    el.strip.dataset.to = String(b);
    el.layer.replaceChildren();
    // Ticks at round times: about five across the strip.
    const span = b - a;
    const step = [10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3].find((s) => span / s <= (el.strip.clientWidth > 560 ? 8 : 5)) || 6 * 3600e3;
    const off = zone.utc ? 0 : new Date(a).getTimezoneOffset() * 60000;
    const ticks = [];
    for (let t = Math.ceil((a - off) / step) * step + off; t < b; t += step) if (t > a) ticks.push(t);
    for (const t of ticks) { const k = h('div', { class: 'tick' }); k.style.left = `${frac(t) * 100}%`; el.layer.append(k); }
    barFill(el.layer, winSegs, winProt, a, b);
    el.ticks.replaceChildren(...ticks.filter((t) => frac(t) > 0.07 && frac(t) < 0.93).map((t) => { const s = h('span', { text: fmtTime(t, { secs: step < 60000, label: false }) }); s.style.left = `${frac(t) * 100}%`; return s; }));
    const sameDay = dayKey(a) === dayKey(b - 1);
    el.winLabel.textContent = win.len === 'day'
      ? `${fmtDay(a)} (${zone.label})`
      : `${fmtDay(a)}, ${fmtTime(a, { label: false, secs: false })} – ${sameDay ? '' : fmtDay(b) + ', '}${fmtTime(b, { secs: false })}`;
    for (const btn of el.lens.children) btn.classList.toggle('on', String(win.len) === btn.dataset.len);
    drawSel();
  }
  function drawSel() {
    const show = sel && sel.to > win.from && sel.from < win.to;
    el.sel.hidden = !show;
    if (show) {
      const x0 = clamp(frac(sel.from), 0, 1), x1 = clamp(frac(sel.to), 0, 1);
      el.sel.style.left = `${x0 * 100}%`;
      el.sel.style.width = `${Math.max(x1 - x0, 0.004) * 100}%`;
      el.sel.classList.toggle('cut-l', sel.from < win.from);
      el.sel.classList.toggle('cut-r', sel.to > win.to);
    }
    el.pend.hidden = pending === null || pending < win.from || pending > win.to;
    if (!el.pend.hidden) el.pend.style.left = `${frac(pending) * 100}%`;
    el.hint.textContent = pending !== null
      ? `Start: ${fmtTime(pending)}. Now tap where the clip ends.`
      : 'Drag across the timeline to select, or tap the start and then the end. Drag an edge to adjust.';
    el.hint.classList.toggle('pending', pending !== null);
  }

  // --- pointer: drag to select, tap start then end, drag an edge -----------------------------
  function timeAt(clientX) {
    const r = el.strip.getBoundingClientRect();
    const x = clamp((clientX - r.left) / r.width, 0, 1);
    return Math.round((win.from + x * (win.to - win.from)) / 1000) * 1000;
  }
  function onDown(e) {
    if (e.button > 0 || drag) return;
    let mode = 'new';
    if (sel && !el.sel.hidden) {
      const r = el.strip.getBoundingClientRect();
      const px = (t) => r.left + clamp(frac(t), 0, 1) * r.width;
      const dF = Math.abs(e.clientX - px(sel.from)), dT = Math.abs(e.clientX - px(sel.to));
      if (Math.min(dF, dT) <= (e.pointerType === 'mouse' ? 8 : 20)) mode = dF < dT ? 'from' : 'to';
    }
    drag = { id: e.pointerId, x0: e.clientX, t0: timeAt(e.clientX), mode, moved: false };
    el.strip.setPointerCapture?.(e.pointerId);
  }
  function onMove(e) {
    if (!drag || e.pointerId !== drag.id) return;
    if (!drag.moved && Math.abs(e.clientX - drag.x0) < 8) return;
    drag.moved = true;
    pending = null;
    const t = timeAt(e.clientX);
    let a, b;
    if (drag.mode === 'from') [a, b] = t < sel.to ? [t, sel.to] : [sel.to - 1000, sel.to];
    else if (drag.mode === 'to') [a, b] = t > sel.from ? [sel.from, t] : [sel.from, sel.from + 1000];
    else [a, b] = [Math.min(drag.t0, t), Math.max(drag.t0, t)];
    setSel(a, b === a ? a + 1000 : b, { from: 'timeline' });
  }
  function onUp(e) {
    if (!drag || e.pointerId !== drag.id) return;
    const d = drag;
    drag = null;
    if (d.moved || e.type === 'pointercancel') return;
    if (pending === null) { pending = d.t0; drawSel(); return; }
    const [a, b] = [Math.min(pending, d.t0), Math.max(pending, d.t0)];
    pending = null;
    setSel(a, b === a ? a + 1000 : b, { from: 'timeline' });
  }

  // --- the selection -------------------------------------------------------------------------
  /** Sets the range. `from`: what set it ('fields' leaves the fields alone; 'timeline' keeps the window). */
  let lastPreset = 0;              // the quick pick that made `sel` (re-anchored to now on every visit)
  function setSel(a, b, { from = 'code' } = {}) {
    if (from !== 'preset') lastPreset = 0;
    sel = { from: a, to: b };
    if (from !== 'fields') writeFields();
    el.fieldErr.hidden = true;
    el.len.textContent = `Length ${fmtDur((b - a) / 1000)}`;
    if (current === 'export') history.replaceState(null, '', `#export?from=${a}&to=${b}`);
    if (from !== 'timeline' && fit()) loadWindow(); else drawSel();
    scheduleCheck();
  }
  function writeFields() {
    if (!sel) return;
    el.fromDate.value = fieldDate(sel.from); el.fromTime.value = fieldTime(sel.from);
    el.toDate.value = fieldDate(sel.to); el.toTime.value = fieldTime(sel.to);
  }
  function readFields() {
    const a = fieldsToMs(el.fromDate.value, el.fromTime.value), b = fieldsToMs(el.toDate.value, el.toTime.value);
    const bad = (msg) => { el.fieldErr.textContent = msg; el.fieldErr.hidden = false; blocked(msg); };
    if (a === null || b === null) return bad('Enter a date and a 24-hour time (like 14:05:30) for both the start and the end.');
    if (b <= a) return bad('The end must be after the start.');
    pending = null;
    setSel(a, b, { from: 'fields' });
  }
  function zoneLabels() {
    for (const s of root.querySelectorAll('.zone-name')) s.textContent = zone.label;
  }

  async function preset(seconds) {
    let n = newest();
    if (n === null) {
      try { setStatus(await api(camq('/api/status'))); n = newest(); } catch (e) { toast(e.message, true); return; }
    }
    if (n === null) { toast('Nothing has been recorded yet.', true); return; }
    pending = null;
    // Whole seconds up to the newest stored frame: a range whose footage is all on the card.
    const to = Math.floor(n / 1000) * 1000;
    setSel(to - seconds * 1000, to, { from: 'preset' });
    lastPreset = seconds;
  }
  async function wholeSegment() {
    pending = null;
    const n = newest();
    const at = sel ? sel.from : n;
    if (at === null) { toast('Nothing has been recorded yet.', true); return; }
    try {
      // The segment holding the start of the range (or the first one after it), else the newest.
      let segs = (await api(camq(`/api/segments?from=${iso(at)}&to=${iso(at + 6 * 3600000)}`))).segments || [];
      if (!segs.length) segs = ((await api(camq(`/api/segments?from=${iso((n ?? at) - 3600000)}`))).segments || []).slice(-1);
      const s = segs[0];
      if (!s) { toast('No segment there.', true); return; }
      setSel(tms(s.start_ms ?? s.start), tms(s.end_ms ?? s.end) + 1);
    } catch (e) { toast(e.message, true); }
  }

  // --- what the export will be ---------------------------------------------------------------
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkSeq++;
    checking = true;
    el.summary.classList.add('stale');
    el.state.textContent = 'Checking the footage…'; el.state.hidden = false;
    el.barText.textContent = 'Checking…';
    setDownload(null);
    checkTimer = setTimeout(check, 350);
  }
  function blocked(msg) {
    clearTimeout(checkTimer);
    checkSeq++;
    checking = false;
    last = { error: { status: 0, message: msg, local: true } };
    render();
  }
  async function check() {
    const my = checkSeq;
    const q = query();
    try {
      const [info, sr] = await Promise.all([api(camq(`/api/export.json?${q}`)), api(camq(`/api/segments?${q}`)).catch(() => null)]);
      if (my !== checkSeq) return;
      last = { info, gaps: sr ? (sr.gaps || []).map((g) => ({ from: tms(g.from), to: tms(g.to) })) : null, q };
    } catch (e) {
      if (my !== checkSeq) return;
      last = { error: e };
    }
    checking = false;
    render();
  }
  function setDownload(info, q) {
    for (const a of [el.dl, el.barDl]) {
      if (info) {
        a.href = camq(`/api/export.mp4?${q}`);
        a.download = info.file_name;
        a.removeAttribute('aria-disabled');
        a.classList.remove('off');
      } else {
        a.removeAttribute('href');
        a.setAttribute('aria-disabled', 'true');
        a.classList.add('off');
      }
    }
  }
  function render() {
    if (checking) return; // the answer for the range on screen comes shortly
    el.summary.classList.remove('stale');
    const set = (e, text, data) => { e.textContent = text; if (data) Object.assign(e.dataset, data); };
    if (!last || !sel) return;
    if (last.error) {
      const e = last.error;
      el.ok.hidden = true; el.err.hidden = false;
      const head = e.local ? 'Check the range'
        : e.status === 404 ? 'No footage in this range'
        : e.status === 400 ? 'The dash cam refused this range'
        : e.status === 0 ? 'The dash cam did not answer'
        : 'Could not prepare the export';
      set(el.errHead, head);
      set(el.errMsg, e.local ? e.message : e.status === 404 ? `The dash cam says: ${e.message}.` : e.message);
      el.errHint.hidden = e.status !== 404;
      el.state.hidden = true;
      el.barText.textContent = head;
      setDownload(null);
      return;
    }
    const { info, gaps } = last;
    el.ok.hidden = false; el.err.hidden = true;
    const L = (sel.to - sel.from) / 1000;
    set(el.size, fmtBytes(info.bytes), { bytes: String(info.bytes) });
    set(el.dur, fmtDur(info.duration_s), { seconds: String(info.duration_s) });
    set(el.frames, info.frames.toLocaleString('en-US'), { frames: String(info.frames) });
    const s0 = tms(info.start), s1 = tms(info.end);
    const cuts = (gaps || []).filter((g) => g.to > s0 && g.from < s1);
    const missing = Math.max(0, L - info.duration_s);
    set(el.cover, missing < 1.5 ? `all ${fmtDur(L)} of the range` : `${fmtDur(info.duration_s)} of the ${fmtDur(L)} range`);
    el.cover.className = missing < 1.5 ? 'ok' : '';
    set(el.gaps, gaps === null ? '–' : cuts.length ? `${cuts.length} (${fmtDur(cuts.reduce((n, g) => n + (Math.min(g.to, s1) - Math.max(g.from, s0)), 0) / 1000)} without footage); the video cuts across ${cuts.length > 1 ? 'them' : 'it'}` : 'none', { gaps: String(cuts.length) });
    const when = (t) => { const p = parts(t); return `${p.d} ${MONTHS[p.mo]} ${p.y}, ${fmtTime(t)}`; };
    set(el.first, when(s0));
    set(el.lastFrame, when(s1));
    set(el.file, info.file_name);
    el.skipped.hidden = !info.skipped;
    el.skipped.textContent = `${info.skipped} damaged frame${info.skipped > 1 ? 's' : ''} left out (they failed their checksum).`;
    el.big.hidden = info.bytes < 1024 ** 3;
    el.state.textContent = 'Ready to download'; el.state.hidden = false;
    el.barText.replaceChildren(h('strong', { text: fmtBytes(info.bytes) }), ` · ${fmtDur(info.duration_s)}`);
    setDownload(info, last.q);
  }

  // --- the page ------------------------------------------------------------------------------
  function build() {
    const presets = h('div', { class: 'presets', id: 'export-presets' },
      PRESETS.map(([s, t]) => h('button', { class: 'btn small', type: 'button', 'data-seconds': String(s), text: t, onclick: () => preset(s) })),
      h('button', { class: 'btn small', type: 'button', id: 'export-segment', text: 'Segment', 'aria-label': 'This segment', title: 'The whole segment where the range starts', onclick: wholeSegment }));

    el.layer = h('div', { class: 'xlayer' });
    el.sel = h('div', { class: 'xsel', id: 'export-sel', hidden: true }, h('span', { class: 'grip l' }), h('span', { class: 'grip r' }));
    el.pend = h('div', { class: 'xpend', hidden: true });
    el.strip = h('div', { class: 'xstrip', id: 'export-strip', role: 'group', 'aria-label': 'Timeline: drag across it, or tap the start and then the end, to pick the clip' }, el.layer, el.sel, el.pend);
    el.strip.addEventListener('pointerdown', onDown);
    el.strip.addEventListener('pointermove', onMove);
    el.strip.addEventListener('pointerup', onUp);
    el.strip.addEventListener('pointercancel', onUp);
    el.ticks = h('div', { class: 'xticks', 'aria-hidden': 'true' });
    el.winLabel = h('strong', { class: 'xwin', id: 'export-window' });
    el.lens = h('div', { class: 'seg', role: 'group', 'aria-label': 'Timeline span', id: 'export-lens' },
      WINDOWS.map(([len, t]) => h('button', { type: 'button', 'data-len': String(len), text: t, onclick: () => setLen(len) })));
    el.hint = h('p', { class: 'xhint', id: 'export-hint' });

    const dateIn = (id, label) => h('input', { type: 'date', id, 'aria-label': label, oninput: readFields });
    // 24 h everywhere: a text field (a time input follows the browser's 12 h/24 h locale).
    const timeIn = (id, label) => h('input', { type: 'text', id, inputmode: 'numeric', autocomplete: 'off', pattern: '([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?', placeholder: 'HH:MM:SS', maxlength: '8', 'aria-label': `${label} (24 h, HH:MM:SS)`, oninput: readFields });
    el.fromDate = dateIn('export-from-date', 'Start date'); el.fromTime = timeIn('export-from-time', 'Start time');
    el.toDate = dateIn('export-to-date', 'End date'); el.toTime = timeIn('export-to-time', 'End time');
    el.fieldErr = h('p', { class: 'xferr', id: 'export-field-err', role: 'alert', hidden: true });
    el.len = h('span', { class: 'muted', id: 'export-len' });
    const zoneName = () => h('span', { class: 'zone-name', text: zone.label });
    const fields = h('div', { class: 'xfields' },
      h('div', { class: 'xfield' }, h('label', { for: 'export-from-date' }, 'From ', h('span', { class: 'zl' }, zoneName())), h('div', { class: 'xdt' }, el.fromDate, el.fromTime)),
      h('div', { class: 'xfield' }, h('label', { for: 'export-to-date' }, 'To ', h('span', { class: 'zl' }, zoneName())), h('div', { class: 'xdt' }, el.toDate, el.toTime)));

    // The summary.
    const fact = (k, id) => { const dd = h('dd', { id }); return [[h('dt', { text: k }), dd], dd]; };
    const rows = [];
    const add = (k, id) => { const [pair, dd] = fact(k, id); rows.push(...pair); return dd; };
    el.frames = add('Frames', 'export-frames');
    el.cover = add('Footage', 'export-cover');
    el.gaps = add('Gaps', 'export-gaps');
    el.first = add('First frame', 'export-first');
    el.lastFrame = add('Last frame', 'export-last');
    el.size = h('div', { class: 'big', id: 'export-size', text: '–' });
    el.dur = h('div', { class: 'big', id: 'export-duration', text: '–' });
    el.file = h('div', { class: 'mono xfile', id: 'export-file' });
    el.skipped = h('p', { class: 'err', id: 'export-skipped', hidden: true });
    el.big = h('p', { class: 'muted', hidden: true, text: 'A large file: over the dash cam\u2019s Wi-Fi it takes a while. A shorter range downloads faster.' });
    el.ok = h('div', { id: 'export-ok', hidden: true },
      h('div', { class: 'xbig' }, h('div', {}, h('span', { class: 'muted', text: 'Size' }), el.size), h('div', {}, h('span', { class: 'muted', text: 'Duration' }), el.dur)),
      h('dl', { class: 'facts' }, rows),
      h('div', { class: 'xfilerow' }, h('span', { class: 'muted', text: 'File' }), el.file), el.skipped, el.big);
    el.errHead = h('strong', { id: 'export-error-head' });
    el.errMsg = h('p', { id: 'export-error' });
    el.errHint = h('p', { class: 'muted', text: 'Pick a range over the green footage on the timeline, or use one of the quick picks.' });
    el.err = h('div', { class: 'xerr', id: 'export-err', role: 'alert', hidden: true }, el.errHead, el.errMsg, el.errHint);
    el.state = h('p', { class: 'muted xstate', id: 'export-state', role: 'status', text: 'Pick a range.' });
    el.dl = h('a', { class: 'btn primary wide off', id: 'export-download', 'aria-disabled': 'true' }, icon('download'), 'Download MP4');
    el.summary = h('div', { class: 'card xsummary', id: 'export-summary' }, h('h3', { text: 'The clip' }), el.ok, el.err, el.state, el.dl,
      h('p', { class: 'muted xnote', text: 'Your browser shows the download\u2019s progress. The MP4 plays in VLC, mpv and QuickTime, with the recording time as subtitles.' }));

    el.barText = h('span', { class: 'xbar-text', id: 'export-bar-text', text: 'Pick a range' });
    el.barDl = h('a', { class: 'btn primary off', id: 'export-bar-download', 'aria-disabled': 'true', 'aria-label': 'Download MP4' }, icon('download'), 'Download');
    const bar = h('div', { class: 'xbar' }, el.barText, el.barDl);
    for (const a of [el.dl, el.barDl]) a.addEventListener('click', (e) => { if (a.classList.contains('off')) e.preventDefault(); else toast('Download started: your browser shows its progress.'); });

    root.append(
      h('div', { class: 'toolbar' }, h('h2', { text: 'Export a clip', class: 'grow' }),
        zoneSwitch('zone-export', () => { zoneLabels(); writeFields(); if (win.len === 'day') place('day', sel ? sel.from : win.from); loadWindow(); render(); })),
      h('div', { class: 'xgrid' },
        h('div', {},
          h('div', { class: 'card' }, h('h3', { text: 'Quick pick' }), presets),
          h('div', { class: 'card' },
            h('div', { class: 'xhead' }, h('h3', { text: 'Timeline' }), el.lens),
            h('div', { class: 'xnav' },
              h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Earlier', text: '‹', onclick: () => shiftWindow(-1) }),
              el.winLabel,
              h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Later', text: '›', onclick: () => shiftWindow(1) })),
            el.strip, el.ticks,
            h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'l-foot' }), 'footage'), h('span', {}, h('i', { class: 'l-prot' }), 'protected'), h('span', {}, h('i', { class: 'l-sel' }), 'your clip')),
            el.hint),
          h('div', { class: 'card' }, h('div', { class: 'xhead' }, h('h3', { text: 'Range' }), el.len), fields, el.fieldErr)),
        el.summary),
      bar);
    zoneLabels();
    built = true;
  }

  return {
    async enter(params) {
      if (!built) build();
      const a = Number(params.get('from')), b = Number(params.get('to'));
      if (params.has('from') && params.has('to') && Number.isFinite(a) && Number.isFinite(b) && b > a) {
        pending = null;
        setSel(a, b);
      } else if (lastPreset) {
        // "Last N" means the last N now, not when it was picked.
        await preset(lastPreset);
      } else if (sel) {
        history.replaceState(null, '', `#export?from=${sel.from}&to=${sel.to}`);
        loadWindow();
      } else {
        await preset(60); // fits the timeline window to it
        if (!sel) { place(600000, newest() ?? Date.now()); loadWindow(); }
      }
    },
  };
})();
