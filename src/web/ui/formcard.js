import { h, api } from './util.js';

// ---------------------------------------------------------------------------------------------
// A settings card backed by one GET/PUT route ({"settings": {...}, "status": {...}}): fields
// from a list, one write-only secret (an empty field keeps the saved one), Save with the failing
// field marked, and buttons of the caller's. Used by the offload and alert cards.

/** spec: {id, title, intro, route, fields: [[key, label, type, extra]], secrets: [[key, setKey]],
 *  buttons: [[id, label, onclick(card)]], onStatus(status)}. Returns {el, msg(text, cls)}. */
export function formCard(spec) {
  const inputs = {};
  const secrets = new Map(spec.secrets);
  const msgEl = h('p', { class: 'msg', id: `${spec.id}-msg`, role: 'status' });
  const card = { inputs, msg(text, cls = '') { msgEl.textContent = text; msgEl.className = `msg ${cls}`; } };

  function field([key, label, type, extra]) {
    const id = `${spec.id}-${key}`;
    let input;
    if (type === 'select') input = h('select', { id, name: key }, extra.map(([v, t]) => h('option', { value: v, text: t })));
    else if (type === 'checkbox') input = h('input', { id, name: key, type: 'checkbox' });
    else input = h('input', { id, name: key, type, placeholder: extra || undefined, autocomplete: type === 'password' ? 'new-password' : 'off', spellcheck: 'false', autocapitalize: 'none' });
    inputs[key] = input;
    if (type === 'checkbox') return h('div', { class: 'field', 'data-key': key }, h('div', { class: 'inrow' }, h('label', { for: id, text: label, class: 'grow' }), h('span', { class: 'switch' }, input, h('span'))));
    return h('div', { class: 'field', 'data-key': key }, h('label', { for: id, text: label }), input);
  }

  async function load() {
    try {
      const r = await api(spec.route);
      for (const [key, , type] of spec.fields) {
        const i = inputs[key];
        if (secrets.has(key)) i.placeholder = r.settings[secrets.get(key)] ? 'saved (leave empty to keep it)' : 'not set';
        else if (type === 'checkbox') i.checked = !!r.settings[key];
        else i.value = String(r.settings[key] ?? '');
      }
      spec.onStatus(r.status);
    } catch (e) { card.msg(e.message, 'err'); }
  }

  async function save() {
    const body = {};
    for (const [key, , type] of spec.fields) {
      const i = inputs[key];
      if (type === 'checkbox') body[key] = i.checked;
      else if (type === 'number') body[key] = Number(i.value || 0);
      else if (!secrets.has(key) || i.value) body[key] = i.value.trim();
    }
    for (const f of card.el.querySelectorAll('.field.bad')) f.classList.remove('bad');
    try {
      await api(spec.route, { method: 'PUT', body });
      for (const k of secrets.keys()) inputs[k].value = '';
      card.msg('Saved.', 'ok');
      load();
    } catch (e) {
      card.msg(`Not saved: ${e.message}`, 'err');
      if (e.key) card.el.querySelector(`.field[data-key="${e.key}"]`)?.classList.add('bad');
    }
  }

  card.el = h('div', { class: 'card', id: `card-${spec.id}` }, h('h3', { text: spec.title }),
    h('p', { class: 'muted', text: spec.intro }), spec.head || null,
    spec.fields.map(field),
    h('div', { class: 'inrow wrap' },
      h('button', { class: 'btn primary', type: 'button', id: `${spec.id}-save`, text: 'Save', onclick: save }),
      spec.buttons.map(([id, label, f]) => h('button', { class: 'btn', type: 'button', id, text: label, onclick: () => f(card) }))),
    msgEl);
  load();
  return card;
}
