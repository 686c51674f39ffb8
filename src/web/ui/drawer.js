import { $, h, api, camera, camq } from './util.js';

// ---------------------------------------------------------------------------------------------
// Camera controls drawer: /api/controls grouped by category.

export const drawer = (() => {
  const panel = $('#drawer'), scrim = $('#scrim'), body = $('#drawer-body');

  function close() { panel.hidden = true; scrim.hidden = true; }
  async function send(c, row, path, payload) {
    const err = row.querySelector('.ferr');
    err.hidden = true;
    try {
      const r = await api(camq(path), { method: payload === undefined ? 'POST' : 'PUT', body: payload });
      if (r && typeof r === 'object' && 'value' in r) Object.assign(c, r);
      row.replaceWith(control(c));
    } catch (e) {
      err.textContent = e.message; err.hidden = false;
    }
  }
  function control(c) {
    const id = `ctl-${c.id}`;
    const err = h('div', { class: 'ferr', role: 'alert', hidden: true });
    const dis = c.read_only;
    const set = (v) => send(c, row, `/api/controls/${c.id}`, { value: v });
    const val = h('span', { class: 'val', id: `${id}-val` });
    let input;
    switch (c.type) {
      case 'integer': {
        input = h('input', { type: 'range', class: 'big', id, min: String(c.min), max: String(c.max), step: String(c.step || 1), disabled: dis });
        input.value = String(c.value);
        val.textContent = String(c.value);
        input.addEventListener('input', () => (val.textContent = input.value));
        input.addEventListener('change', () => set(Number(input.value)));
        break;
      }
      case 'boolean': {
        const cb = h('input', { type: 'checkbox', id, role: 'switch', disabled: dis });
        cb.checked = Boolean(c.value);
        cb.addEventListener('change', () => set(cb.checked));
        input = h('span', { class: 'switch' }, cb, h('span'));
        break;
      }
      case 'menu':
      case 'integer_menu': {
        input = h('select', { id, disabled: dis, onchange: () => set(Number(input.value)) },
          (c.menu || []).map((m) => h('option', { value: String(m.index), text: String(m.name ?? m.value ?? m.index) })));
        input.value = String(c.value);
        break;
      }
      case 'button':
        input = h('button', { class: 'btn small', type: 'button', id, disabled: dis, text: 'Run', onclick: () => set(true) });
        break;
      default: {
        input = h('input', { type: c.type === 'string' ? 'text' : 'number', id, disabled: dis });
        input.value = String(c.value ?? '');
        input.addEventListener('change', () => set(c.type === 'string' ? input.value : Number(input.value)));
      }
    }
    const canReset = c.type !== 'button' && c.default !== undefined && !dis;
    const reset = canReset ? h('button', { class: 'btn small ghost', type: 'button', 'aria-label': `Reset ${c.name}`, title: 'Back to default', text: 'Reset',
      disabled: c.value === c.default, onclick: () => send(c, row, `/api/controls/${c.id}/reset`, undefined) }) : null;
    const head = c.type === 'integer' || c.type === 'boolean'
      ? h('div', { class: 'ctl-top' }, h('label', { for: id, text: c.name }), c.type === 'integer' ? val : input, reset)
      : h('div', { class: 'ctl-top' }, h('label', { for: id, text: c.name }), reset);
    const row = h('div', { class: `ctl${c.inactive ? ' inactive' : ''}`, 'data-id': String(c.id) }, head,
      c.type === 'integer' ? input : c.type === 'boolean' ? null : input,
      c.inactive ? h('div', { class: 'muted', text: 'Inactive with the current settings' }) : null, err);
    return row;
  }
  async function open() {
    panel.hidden = false; scrim.hidden = false;
    // Which camera's controls (config `cameras`): the one the pages show.
    $('#drawer-title').textContent = camera.names.length > 1 ? `Camera controls: ${camera.name || camera.first}` : 'Camera controls';
    body.replaceChildren(h('p', { class: 'empty', text: 'Loading…' }));
    let list;
    try { list = (await api(camq('/api/controls'))).controls || []; } catch (e) {
      body.replaceChildren(h('p', { class: 'empty', id: 'controls-empty', text: e.status === 404 ? 'Camera controls are not available in this version of blackbox.' : `Could not load the controls: ${e.message}` }));
      return;
    }
    if (!list.length) {
      body.replaceChildren(h('p', { class: 'empty', id: 'controls-empty', text: 'This camera has no adjustable controls.' }));
      return;
    }
    const groups = new Map();
    for (const c of list) { const g = c.category || 'Camera'; if (!groups.has(g)) groups.set(g, []); groups.get(g).push(c); }
    body.replaceChildren(...[...groups].map(([g, cs]) => h('section', { class: 'ctl-group' }, h('h3', { text: g }), cs.map(control))));
  }
  $('#drawer-close').addEventListener('click', close);
  scrim.addEventListener('click', close);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !panel.hidden) close(); });
  return { open, close };
})();
