// Zoom and pan over a picture (the live view and the player): wheel and pinch zoom about the
// point under the pointer, drag to pan, double-click/tap toggles 2×, a minimap of the whole
// frame while zoomed, a zoom chip and a zoom row (−, slider, +).

import { h, clamp, icon } from './util.js';

/**
 * `stage`: the element that takes the pointer; `targets()`: the elements moved and scaled;
 * `source()`: what the minimap draws (img, video or canvas); `id`: prefix for element ids.
 * Returns { minimap, chip, row, zoomAt, apply, reset, get z, drawMinimap, dragging }.
 */
export function zoomable(stage, { targets, source, id }) {
  let z = 1, cx = 0.5, cy = 0.5; // zoom and the centre of the visible window (0..1 of the frame)
  const pointers = new Map();
  let pinch = null, moved = 0;
  const mmCanvas = h('canvas', { width: '160', height: '90' });
  const mmWin = h('div', { class: 'win' });
  const minimap = h('div', { class: 'minimap', id: `${id}-minimap`, hidden: true }, mmCanvas, mmWin);
  const chip = h('span', { class: 'chip', id: `${id}-zoom`, text: '1.0×' });
  const range = h('input', { type: 'range', min: '1', max: '4', step: '0.1', value: '1', 'aria-label': 'Zoom', id: `${id}-zoom-range`, oninput: () => zoomAt(Number(range.value)) });
  const row = h('div', { class: 'zoom-ctl' },
    h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Zoom out', text: '−', onclick: () => zoomAt(z - 0.5) }),
    range,
    h('button', { class: 'btn icon', type: 'button', 'aria-label': 'Zoom in', text: '+', onclick: () => zoomAt(z + 0.5) }));

  function apply() {
    z = clamp(z, 1, 4);
    const half = 0.5 / z;
    cx = clamp(cx, half, 1 - half); cy = clamp(cy, half, 1 - half);
    const W = stage.clientWidth, H = stage.clientHeight;
    const t = `translate(${-(cx - half) * W * z}px, ${-(cy - half) * H * z}px) scale(${z})`;
    for (const el of targets()) el.style.transform = t;
    chip.textContent = `${z.toFixed(1)}×`;
    range.value = String(z);
    stage.classList.toggle('zoomed', z > 1.001);
    stage.dataset.zoom = z.toFixed(2);
    const wasHidden = minimap.hidden;
    minimap.hidden = z <= 1.001;
    if (wasHidden && !minimap.hidden) drawMinimap();
    mmWin.style.left = `${(cx - half) * 100}%`; mmWin.style.top = `${(cy - half) * 100}%`;
    mmWin.style.width = mmWin.style.height = `${100 / z}%`;
  }
  /** Zoom to `nz` keeping the frame point under (px, py) (fractions of the stage) in place. */
  function zoomAt(nz, px = 0.5, py = 0.5) {
    nz = clamp(nz, 1, 4);
    const ix = cx - 0.5 / z + px / z, iy = cy - 0.5 / z + py / z;
    z = nz; cx = ix + 0.5 / z - px / z; cy = iy + 0.5 / z - py / z;
    apply();
  }
  function drawMinimap() {
    const p = source();
    if (minimap.hidden || !p || !(p.naturalWidth || p.videoWidth || (p.tagName === 'CANVAS' && p.width > 16))) return;
    const c = mmCanvas.getContext('2d');
    try { c.drawImage(p, 0, 0, mmCanvas.width, mmCanvas.height); } catch { /* no frame yet */ }
  }
  const frac = (e) => { const r = stage.getBoundingClientRect(); return [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height]; };
  stage.addEventListener('pointerdown', (e) => {
    if (e.target.closest('button,a,input')) return;
    stage.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    moved = 0;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) || 1, z };
    }
  });
  stage.addEventListener('pointermove', (e) => {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const W = stage.clientWidth, H = stage.clientHeight;
    moved += Math.abs(e.clientX - p.x) + Math.abs(e.clientY - p.y);
    if (pointers.size === 1) {
      cx -= (e.clientX - p.x) / (W * z); cy -= (e.clientY - p.y) / (H * z);
      p.x = e.clientX; p.y = e.clientY;
      apply();
    } else if (pointers.size === 2 && pinch) {
      p.x = e.clientX; p.y = e.clientY;
      const [a, b] = [...pointers.values()];
      const r = stage.getBoundingClientRect();
      zoomAt(pinch.z * Math.hypot(a.x - b.x, a.y - b.y) / pinch.d, ((a.x + b.x) / 2 - r.left) / r.width, ((a.y + b.y) / 2 - r.top) / r.height);
    }
  });
  const up = (e) => { pointers.delete(e.pointerId); if (pointers.size < 2) pinch = null; };
  stage.addEventListener('pointerup', up);
  stage.addEventListener('pointercancel', up);
  // The wheel zooms by how far it turned (a notch of 100 px ≈ 1.2×; lines and pages scaled).
  stage.addEventListener('wheel', (e) => {
    e.preventDefault();
    const [px, py] = frac(e);
    const dy = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1);
    zoomAt(z * Math.exp(clamp(-dy, -600, 600) * 0.002), px, py);
  }, { passive: false });
  stage.addEventListener('dblclick', (e) => { const [px, py] = frac(e); zoomAt(z > 1.5 ? 1 : 2, px, py); });
  new ResizeObserver(() => apply()).observe(stage);

  return {
    minimap, chip, row, zoomAt, apply, drawMinimap,
    reset() { z = 1; cx = cy = 0.5; apply(); },
    get z() { return z; },
    /** The last pointer gesture moved the picture (a drag or pinch, not a tap). */
    get dragged() { return moved > 8; },
  };
}

/** A fullscreen toggle for `el` (the stage: picture and overlays together). */
export function fullscreenButton(el, toast) {
  return h('button', { class: 'btn icon fs', type: 'button', 'aria-label': 'Fullscreen', title: 'Fullscreen (f)', onclick: () => toggleFullscreen(el, toast) },
    icon('full'));
}

export function toggleFullscreen(el, toast) {
  if (document.fullscreenElement) document.exitFullscreen();
  else if (el.requestFullscreen) el.requestFullscreen().catch(() => toast('Fullscreen is not allowed here', true));
  else if (el.webkitEnterFullscreen) el.webkitEnterFullscreen();
}
