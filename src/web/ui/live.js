import { $, h, icon, toast, api, camera, camq, fmtTime, iso, tms, eventKind } from './util.js';
import { lastStatus, onStatus, setStatus, switchCamera } from './status.js';
import { views, current } from './nav.js';
import { drawer } from './drawer.js';
import { zoomable, fullscreenButton } from './zoom.js';

// ---------------------------------------------------------------------------------------------
// Live

views.live = (() => {
  const root = $('#view-live');
  let built = false, img, video, stage, fpsChip, recChip, msg, recBtn, facts, mmTimer = 0, retryTimer = 0;
  let zoom = null; // zoomable(): wheel/pinch zoom, pan, minimap
  const apply = () => zoom && zoom.apply();
  const drawMinimap = () => zoom && zoom.drawMinimap();

  // H.264 recordings play /api/live.mp4 (fragmented MP4) through Media Source Extensions:
  // ManagedMediaSource where it exists (Safari on iOS 17.1+), MediaSource elsewhere. Motion JPEG
  // recordings, and browsers without either, show /api/live.mjpeg in the <img>.
  const MS = window.ManagedMediaSource || window.MediaSource;
  const KEEP_S = 5; // seconds kept buffered behind the live edge
  const START_S = 1; // seconds buffered before playing starts: room for network and CPU hiccups
  let player = null; // the running H.264 stream: { ctl: AbortController }
  const h264 = () => !!(lastStatus && lastStatus.codec === 'h264');
  const canMse = () => !!(MS && MS.isTypeSupported && MS.isTypeSupported('video/mp4; codecs="avc1.42E01F"'));
  /** The element showing the picture now. */
  const pic = () => (player ? video : img);

  function startStream() {
    clearTimeout(retryTimer);
    stopStream();
    msg.hidden = true;
    if (!lastStatus) { retryTimer = setTimeout(startStream, 300); return; }
    if (h264()) {
      if (!canMse()) {
        showMsg('This browser cannot play the H.264 live view (no Media Source Extensions).', 'Recordings play in the Recordings tab; snapshots still work.');
        return;
      }
      img.hidden = true; video.hidden = false;
      const ctl = new AbortController();
      player = { ctl, codec: 'h264' };
      playMp4(ctl).catch((e) => {
        if (ctl.signal.aborted) return;
        streamFailed(e && e.message);
      });
    } else {
      video.hidden = true; img.hidden = false;
      img.src = camq('/api/live.mjpeg');
    }
    apply();
  }
  function stopStream() {
    clearTimeout(retryTimer);
    if (player) {
      player.ctl.abort();
      player = null;
      video.pause();
      video.removeAttribute('src');
      video.srcObject = null;
      video.load();
    }
    // Replacing the source ends the multipart request, freeing a viewer slot on the device.
    img.removeAttribute('src');
  }
  function showMsg(strong, detail) {
    msg.replaceChildren(h('strong', { text: strong }), h('span', { text: detail }));
    msg.hidden = false;
  }
  function streamFailed(why) {
    if (!player && !img.getAttribute('src')) return;
    const state = lastStatus && lastStatus.state;
    showMsg(state === 'camera_lost' ? 'The camera is not delivering frames.' : 'The live view is not available right now.',
      `${why ? why + '. ' : ''}The device may be restarting, busy with other viewers, or out of reach. Retrying…`);
    stopStream();
    retryTimer = setTimeout(startStream, 3000);
  }
  /** The avc1 codec string from the init segment's avcC (profile, constraints, level). */
  /** The codecs of the init segment once its whole `moov` is in `b`: the avcC's profile and
   *  level, and `mp4a.40.2` when it has the microphone's track; null until then. */
  function codecOf(b) {
    let at = 0, moov = null;
    while (at + 8 <= b.length) {
      const size = ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
      const type = String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]);
      if (size < 8) return null;
      if (type === 'moov') { if (at + size > b.length) return null; moov = b.subarray(at, at + size); break; }
      at += size;
    }
    if (!moov) return null;
    const find = (t) => { for (let i = 4; i + 8 < moov.length; i++) if (String.fromCharCode(moov[i], moov[i + 1], moov[i + 2], moov[i + 3]) === t) return i; return -1; };
    const i = find('avcC');
    if (i < 0) return null;
    const x = (v) => v.toString(16).padStart(2, '0').toUpperCase();
    return `avc1.${x(moov[i + 5])}${x(moov[i + 6])}${x(moov[i + 7])}${find('mp4a') >= 0 ? ',mp4a.40.2' : ''}`;
  }
  async function playMp4(ctl) {
    const ms = new MS();
    const opened = new Promise((res) => ms.addEventListener('sourceopen', res, { once: true }));
    if (window.ManagedMediaSource && ms instanceof window.ManagedMediaSource) {
      video.disableRemotePlayback = true;
      video.srcObject = ms;
    } else {
      video.src = URL.createObjectURL(ms);
    }
    await opened;
    const r = await fetch(camq('/api/live.mp4'), { signal: ctl.signal, cache: 'no-store' });
    if (r.status === 401) { location.assign('/login'); return; }
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      throw new Error((j && j.error) || `HTTP ${r.status}`);
    }
    const reader = r.body.getReader();
    let head = new Uint8Array(0), sb = null, started = false;
    const queue = [];
    let queued = 0;
    const pump = () => {
      if (!sb || sb.updating || ms.readyState !== 'open') return;
      const b = sb.buffered;
      if (b.length) {
        const start = b.start(0), end = b.end(b.length - 1);
        // Drop what lies well behind the live edge (keeps memory bounded, as Safari requires).
        if (video.currentTime - start > KEEP_S * 2) { sb.remove(start, video.currentTime - KEEP_S); return; }
        const last = b.start(b.length - 1);
        if (!started) {
          // Start with a little in hand (network and decoder jitter), so the first pictures
          // are not late for their time and dropped.
          if (end - last >= START_S) {
            started = true;
            video.currentTime = last;
            video.play().catch(() => { /* autoplay refused: the user taps play */ });
          }
        } else if (video.currentTime < last || end - video.currentTime > START_S + 3) {
          // In a hole, or too far behind: jump to just before the live edge.
          video.currentTime = Math.max(last, end - START_S);
        }
        // Chase the live edge gently: a little faster while well behind the planned delay.
        video.playbackRate = end - video.currentTime > START_S + 1 ? 1.1 : 1;
      }
      if (!queue.length) return;
      const chunk = queue.length === 1 ? queue[0] : concat(queue);
      queue.length = 0; queued = 0;
      sb.appendBuffer(chunk);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!sb) {
        head = concat([head, value]);
        const codec = codecOf(head);
        if (!codec) { if (head.length > 65536) throw new Error('the stream has no H.264 track'); continue; }
        if (!MS.isTypeSupported(`video/mp4; codecs="${codec}"`)) throw new Error(`this browser cannot decode ${codec}`);
        showSound(codec.includes('mp4a'));
        sb = ms.addSourceBuffer(`video/mp4; codecs="${codec}"`);
        sb.mode = 'segments';
        sb.addEventListener('updateend', pump);
        sb.addEventListener('error', () => streamFailed('the browser refused the stream'));
        queue.push(head);
        queued = head.length;
      } else {
        queue.push(value);
        queued += value.length;
        // The browser stopped taking data (tab in the background, decoder stalled): start over
        // rather than hold more than a few seconds in memory.
        if (queued > 8 << 20) throw new Error('the browser fell behind');
      }
      pump();
    }
    // The device ended the stream (the picture format changed): reconnect.
    if (!ctl.signal.aborted) { stopStream(); retryTimer = setTimeout(startStream, 500); }
  }
  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  // Sound on the live view: a speaker button on the picture while the stream has the
  // microphone's track; off until asked for (browsers start media muted), remembered.
  let soundBtn = null;
  function showSound(has) {
    if (!soundBtn) return;
    soundBtn.hidden = !has;
    video.muted = !has || localStorage.getItem('bb.sound') !== 'on';
    soundBtn.replaceChildren(icon(video.muted ? 'sound-off' : 'sound'));
    soundBtn.setAttribute('aria-label', video.muted ? 'Sound on' : 'Sound off');
    soundBtn.setAttribute('aria-pressed', String(!video.muted));
  }

  let stopArmed = 0;
  async function toggleRecording() {
    const want = !(lastStatus && lastStatus.recording);
    // Stopping a dash cam is rarely meant: the first tap asks, a second within 4 s stops.
    if (!want && Date.now() - stopArmed > 4000) {
      stopArmed = Date.now();
      recBtn.textContent = 'Tap again to stop recording';
      recBtn.classList.add('armed');
      setTimeout(() => { if (stopArmed && Date.now() - stopArmed >= 4000) { stopArmed = 0; recBtn.classList.remove('armed'); if (lastStatus) update(lastStatus); } }, 4100);
      return;
    }
    stopArmed = 0;
    recBtn.classList.remove('armed');
    recBtn.disabled = true;
    try {
      const r = await api(camq('/api/recording'), { method: 'PUT', body: { recording: want } });
      toast(r.recording ? 'Recording started' : 'Recording stopped');
      if (lastStatus) setStatus({ ...lastStatus, recording: r.recording, state: r.recording ? 'recording' : 'stopped' });
    } catch (e) { toast(e.message, true); } finally { recBtn.disabled = false; }
  }
  // "Save incident": an event protecting event_pre_s of footage before and event_post_s after.
  async function saveIncident() {
    try {
      const r = await api('/api/incidents', { method: 'POST', body: {} });
      toast(`Protected ${fmtTime(tms(r.from), { label: false })}–${fmtTime(tms(r.to))}${r.repeats ? ' (incident extended)' : ''}`);
      showLatest(r);
    } catch (e) { toast(`Could not save the incident: ${e.message}`, true); }
  }
  let latestEl = null;
  function showLatest(e) {
    if (!latestEl) return;
    if (!e) { latestEl.hidden = true; return; }
    latestEl.hidden = false;
    latestEl.replaceChildren(h('span', { text: 'Latest event: ' }),
      h('a', { href: `#events`, text: `${eventKind(e)}${e.peak_g != null ? ` ${e.peak_g.toFixed(1)} g` : ''} at ${fmtTime(tms(e.time))}` }));
  }
  // Parking mode: a toggle; while on, motion on the picture and bumps make events.
  let parkBtn = null;
  function showParking(p) {
    if (!parkBtn || !p) return;
    parkBtn.dataset.on = String(p.on);
    parkBtn.classList.toggle('on', p.on);
    parkBtn.replaceChildren(icon('shield'), p.on ? `Parked: watching (${p.motions} motion${p.motions === 1 ? '' : 's'})` : 'Parking mode');
    parkBtn.title = p.on ? 'Leave parking mode' : 'Parked: motion on the picture and bumps make events';
  }
  async function toggleParking() {
    try {
      const on = parkBtn.dataset.on !== 'true';
      showParking(await api('/api/parking', { method: 'POST', body: { on } }));
      toast(on ? 'Parking mode on: motion and bumps make events' : 'Parking mode off');
    } catch (e) { toast(`Parking mode: ${e.message}`, true); }
  }
  // The microphone: a switch (config "audio": muted stores nothing), its state on the picture.
  let micBtn = null, micChip = null;
  function showMic(a) {
    if (!micBtn) return;
    const has = a && a.state !== 'off';
    micBtn.hidden = !has;
    micChip.hidden = !has;
    if (!has) return;
    micBtn.dataset.on = String(a.enabled);
    micBtn.replaceChildren(icon(a.enabled ? 'mic' : 'mic-off'), a.enabled ? 'Mute sound recording' : 'Record sound');
    micBtn.setAttribute('aria-pressed', String(!a.enabled));
    const words = { recording: 'SOUND', muted: 'MUTED', searching: 'NO MIC', lost: 'MIC LOST' };
    micChip.textContent = words[a.state] || a.state.toUpperCase();
    micChip.className = a.state === 'recording' ? 'chip' : 'chip muted';
    micChip.title = a.state === 'muted' ? 'Sound is not being recorded' : a.state === 'recording' ? `Recording sound from ${a.card || a.device || 'the microphone'}` : 'No microphone is recording';
  }
  async function toggleMic() {
    const on = micBtn.dataset.on !== 'true';
    micBtn.disabled = true;
    try {
      await api('/api/config', { method: 'PUT', body: { audio: on } });
      toast(on ? 'Sound recording on' : 'Sound recording muted: nothing is stored');
      if (lastStatus && lastStatus.audio) showMic({ ...lastStatus.audio, enabled: on, state: on ? 'recording' : 'muted' });
    } catch (e) { toast(`Sound: ${e.message}`, true); } finally { micBtn.disabled = false; }
  }
  async function loadParking() {
    try { showParking(await api('/api/parking')); } catch { /* not available */ }
  }
  async function loadLatest() {
    try { const r = await api('/api/incidents'); showLatest(r.incidents[0]); } catch { /* events unavailable: nothing shown */ }
  }

  // Every camera at once (two or more): a grid of pictures, each refreshed as soon as the last
  // one arrived (snapshots: any codec, no viewer slot held); a tap shows that camera live.
  let gridEl = null, gridBtn = null, gridOn = false, liveWrap = null;
  const tiles = new Map();
  function showGrid(on) {
    gridOn = on && camera.names.length > 1;
    gridEl.hidden = !gridOn;
    liveWrap.hidden = gridOn;
    gridBtn.setAttribute('aria-pressed', String(gridOn));
    if (gridOn) { stopStream(); fillGrid(); } else { for (const t of tiles.values()) { t.img.removeAttribute('src'); if (t.url) URL.revokeObjectURL(t.url); } tiles.clear(); gridEl.replaceChildren(); startStream(); }
  }
  function fillGrid() {
    for (const name of camera.names) {
      if (tiles.has(name)) continue;
      const img = h('img', { class: 'frame', alt: `Camera ${name}`, draggable: 'false' });
      const label = h('span', { class: 'chip' });
      const tile = h('button', { class: 'tile', type: 'button', 'data-camera': name, title: `Show ${name} live`, onclick: () => { switchCamera(name); } },
        img, h('div', { class: 'overlay tr' }, label), h('span', { class: 'tile-name', text: name }));
      const t = { img, label, tile, url: null };
      // Fetched (not an <img> URL: the same URL again would not reload), shown as a blob.
      const load = async () => {
        if (!gridOn || tiles.get(name) !== t) return;
        try {
          const r = await fetch(`/api/snapshot.jpg?camera=${encodeURIComponent(name)}`, { cache: 'no-store' });
          if (r.ok && gridOn && tiles.get(name) === t) {
            const url = URL.createObjectURL(await r.blob());
            if (t.url) URL.revokeObjectURL(t.url);
            t.url = url;
            img.src = url;
          }
        } catch { /* the next try */ }
        setTimeout(load, 700);
      };
      t.load = load;
      tiles.set(name, t);
      gridEl.append(tile);
      load();
    }
    labelGrid(lastStatus);
  }
  function labelGrid(s) {
    for (const c of (s && s.cameras) || []) {
      const t = tiles.get(c.name);
      if (!t) continue;
      t.label.textContent = c.state === 'recording' ? 'REC' : c.state.replace('_', ' ').toUpperCase();
      t.label.className = c.state === 'recording' ? 'chip rec' : 'chip alarm';
    }
  }

  function build() {
    img = h('img', { class: 'frame', alt: 'Live camera view', draggable: 'false', id: 'live-img', onerror: () => streamFailed() });
    video = h('video', { class: 'frame', id: 'live-video', muted: '', playsinline: '', hidden: true, 'aria-label': 'Live camera view' });
    video.muted = true;
    video.addEventListener('error', () => { if (player) streamFailed(`the browser could not decode the stream (${(video.error && video.error.message) || 'error'})`); });
    recChip = h('span', { class: 'chip', id: 'live-rec' });
    fpsChip = h('span', { class: 'chip', id: 'live-fps', text: '– fps' });
    micChip = h('span', { class: 'chip', id: 'live-mic', hidden: true });
    msg = h('div', { class: 'stage-msg', hidden: true });
    stage = h('div', { class: 'stage', id: 'live-stage' }, img, video, msg);
    zoom = zoomable(stage, { targets: () => [img, video], source: pic, id: 'live' });
    zoom.minimap.id = 'minimap';
    zoom.chip.id = 'live-zoom';
    zoom.row.querySelector('input').id = 'zoom';
    // The chips stay off the top-left corner, where the time is burnt into the picture.
    stage.append(h('div', { class: 'overlay tr' }, recChip, micChip, fpsChip), zoom.minimap,
      h('div', { class: 'overlay br' }, soundBtn = h('button', { class: 'btn icon', type: 'button', id: 'live-sound', title: 'Sound', hidden: true, onclick: () => {
        localStorage.setItem('bb.sound', video.muted ? 'on' : 'off');
        showSound(true);
        if (!video.muted) video.play().catch(() => {});
      } }), zoom.chip, fullscreenButton(stage, toast)));
    const zoomRow = zoom.row;

    recBtn = h('button', { class: 'btn wide', type: 'button', id: 'rec-btn', onclick: toggleRecording }, 'Recording…');
    const snap = h('a', { class: 'btn', href: '/api/snapshot.jpg', download: 'snapshot.jpg', id: 'snapshot', onclick: () => {
      snap.href = camq('/api/snapshot.jpg');
      snap.download = `blackbox_${iso(Date.now()).replace(/[-:]/g, '').replace(/\.\d+/, '')}.jpg`;
    } }, icon('camera'), 'Snapshot');
    const actions = h('div', { class: 'live-actions' },
      recBtn,
      h('button', { class: 'btn', type: 'button', id: 'save-last', onclick: saveIncident }, icon('shield'), 'Save incident'),
      snap,
      parkBtn = h('button', { class: 'btn', type: 'button', id: 'parking', onclick: toggleParking }, icon('shield'), 'Parking mode'),
      micBtn = h('button', { class: 'btn', type: 'button', id: 'mic', onclick: toggleMic, hidden: true }, 'Sound'),
      h('button', { class: 'btn wide', type: 'button', id: 'open-controls', onclick: () => drawer.open() }, icon('sliders'), 'Camera controls'));

    facts = h('dl', { class: 'facts' });
    latestEl = h('p', { class: 'latest-event', id: 'latest-event', hidden: true });
    gridEl = h('div', { class: 'cam-grid', id: 'live-grid', hidden: true });
    gridBtn = h('button', { class: 'btn', type: 'button', id: 'grid-btn', hidden: true, 'aria-pressed': 'false', onclick: () => showGrid(!gridOn) }, icon('camera'), 'All cameras');
    liveWrap = h('div', { class: 'live-wrap' },
      h('div', {}, stage, h('div', { class: 'spacer' }), zoomRow),
      h('div', {}, actions, latestEl, h('div', { class: 'spacer' }), h('div', { class: 'card' }, h('h3', { text: 'Camera' }), facts)));
    root.append(h('div', { class: 'grid-bar' }, gridBtn), gridEl, liveWrap);
    loadLatest();
    loadParking();
    setInterval(() => { if (current === 'live' && !document.hidden) { loadParking(); loadLatest(); } }, 10000);
    onStatus(update);
    document.addEventListener('visibilitychange', () => {
      if (current !== 'live') return;
      if (document.hidden) stopStream(); else startStream();
    });
    built = true;
  }

  function update(s) {
    if (!built) return;
    gridBtn.hidden = !s.cameras || s.cameras.length < 2;
    if (gridOn) { labelGrid(s); return; }
    // The recording switched codec (settings changed): switch players.
    if (current === 'live' && !document.hidden && (player || img.getAttribute('src')) && !!player !== (h264() && canMse())) startStream();
    const state = s.state || (s.recording ? 'recording' : 'stopped');
    recChip.textContent = s.recording ? 'REC' : state === 'camera_lost' ? 'CAMERA LOST' : state === 'card_full' ? 'CARD FULL' : 'NOT RECORDING';
    recChip.className = s.recording ? 'chip rec' : 'chip alarm';
    fpsChip.textContent = `${typeof s.fps === 'number' ? s.fps.toFixed(1) : '–'} fps`;
    if (!micBtn || !micBtn.disabled) showMic(s.audio);
    if (!(stopArmed && Date.now() - stopArmed < 4000)) {
      recBtn.replaceChildren(icon(s.recording ? 'stop' : 'rec'), s.recording ? 'Stop recording' : 'Start recording');
      recBtn.className = s.recording ? 'btn wide' : 'btn wide danger';
    }
    const f = s.format || {};
    const rows = [
      ['Camera', s.camera || '–'],
      ['Format', f.width ? `${f.pixel_format || ''} ${f.width}×${f.height} @ ${f.fps} fps` : '–'],
      ['Measured', `${typeof s.fps === 'number' ? s.fps.toFixed(1) : '–'} fps`],
      ['Frames', `${s.frames ?? '–'} (${s.dropped ?? 0} dropped)`],
      ['Viewers', `${s.live_clients ?? '–'}`],
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v, class: k === 'Camera' ? 'long' : undefined })]));
  }

  return {
    enter(params) {
      if (!built) build();
      apply();
      if (params && params.get('grid') === '1' && camera.names.length > 1) { showGrid(true); return; }
      if (gridOn) showGrid(false);
      startStream();
      clearInterval(mmTimer);
      mmTimer = setInterval(drawMinimap, 500);
    },
    leave() { stopStream(); clearInterval(mmTimer); if (gridOn) { gridOn = false; for (const t of tiles.values()) { t.img.removeAttribute('src'); if (t.url) URL.revokeObjectURL(t.url); } tiles.clear(); gridEl.replaceChildren(); gridEl.hidden = true; liveWrap.hidden = false; } },
  };
})();
