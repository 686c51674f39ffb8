// /api/docs: the routes, parameters, schemas and responses of /api/openapi.json, with "Try it"
// using the signed-in session (the cookie goes with every same-origin fetch). No CDN, no build.

const h = (tag, attrs, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head'];
let doc = null;

/** `#/components/schemas/X` → the schema object. */
const deref = (s) => {
  if (!s || !s.$ref) return s;
  return s.$ref.split('/').slice(1).reduce((o, k) => (o ? o[k] : undefined), doc) || {};
};
const refName = (s) => (s && s.$ref ? s.$ref.split('/').pop() : null);

/** A schema as a compact, readable tree (depth-limited: schemas may refer to themselves). */
function schemaView(s, depth = 0) {
  const name = refName(s);
  s = deref(s) || {};
  if (depth > 4) return h('span', { class: 'type', text: name || s.type || 'object' });
  const type = s.type || (s.properties ? 'object' : s.oneOf ? 'one of' : s.enum ? 'enum' : 'any');
  const head = h('span', { class: 'type', text: (name ? name + ': ' : '') + type + (s.format ? ` (${s.format})` : '') });
  const extra = [];
  if (s.enum) extra.push(h('span', { class: 'enum', text: ' ' + s.enum.map((e) => JSON.stringify(e)).join(' | ') }));
  for (const k of ['minimum', 'maximum', 'maxLength', 'maxItems']) if (s[k] !== undefined) extra.push(h('span', { class: 'lim', text: ` ${k} ${s[k]}` }));
  if (s.description) extra.push(h('div', { class: 'desc', text: s.description }));
  if (type === 'array' && s.items) return h('div', { class: 'schema' }, head, extra, h('div', { class: 'kids' }, h('span', { class: 'k', text: 'items ' }), schemaView(s.items, depth + 1)));
  if (s.oneOf || s.anyOf) return h('div', { class: 'schema' }, head, extra, h('div', { class: 'kids' }, (s.oneOf || s.anyOf).map((x) => schemaView(x, depth + 1))));
  if (!s.properties) return h('div', { class: 'schema' }, head, extra);
  const req = new Set(s.required || []);
  const rows = Object.entries(s.properties).map(([k, v]) =>
    h('div', { class: 'prop' }, h('span', { class: 'k', text: k + (req.has(k) ? ' *' : '') + ' ' }), schemaView(v, depth + 1)));
  return h('div', { class: 'schema' }, head, extra, h('div', { class: 'kids' }, rows));
}

function paramsTable(params) {
  if (!params.length) return null;
  return h('table', { class: 'params' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Parameter' }), h('th', { text: 'In' }), h('th', { text: 'Type' }), h('th', { text: 'Description' }))),
    h('tbody', {}, params.map((p) => {
      const s = deref(p.schema) || {};
      return h('tr', {}, h('td', { class: 'k', text: p.name + (p.required ? ' *' : '') }), h('td', { text: p.in }),
        h('td', { text: (s.type || '') + (s.format ? ` (${s.format})` : '') + (s.enum ? ' ' + s.enum.join('|') : '') }),
        h('td', { text: p.description || s.description || '' }));
    })));
}

function tryIt(path, method, op, params) {
  const inputs = params.filter((p) => p.in === 'path' || p.in === 'query').map((p) => {
    const inp = h('input', { name: p.name, placeholder: p.required ? 'required' : 'optional', 'data-in': p.in });
    return [p, inp, h('label', {}, h('span', { text: p.name }), inp)];
  });
  const body = op.requestBody ? h('textarea', { rows: 4, placeholder: 'JSON body', spellcheck: 'false' }) : null;
  const out = h('pre', { class: 'out', hidden: true });
  const go = async () => {
    let url = path;
    const q = new URLSearchParams();
    for (const [p, inp] of inputs) {
      const v = inp.value.trim();
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      else if (v) q.set(p.name, v);
    }
    if ([...q].length) url += '?' + q;
    out.hidden = false;
    out.textContent = `${method.toUpperCase()} ${url} …`;
    try {
      const init = { method: method.toUpperCase(), credentials: 'same-origin', headers: {} };
      if (body && body.value.trim()) { init.body = body.value; init.headers['Content-Type'] = 'application/json'; }
      const r = await fetch(url, init);
      const type = r.headers.get('Content-Type') || '';
      let text;
      if (/json|text/.test(type) && !/event-stream|multipart/.test(type)) {
        text = await r.text();
        try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* as it came */ }
        if (text.length > 20000) text = text.slice(0, 20000) + '\n… (cut)';
      } else {
        if (r.body) r.body.cancel().catch(() => {});
        text = `(${type || 'no type'}; ${r.headers.get('Content-Length') || 'streamed'} bytes; open ${url} to download)`;
      }
      out.textContent = `${r.status} ${r.statusText}\n${text}`;
      out.dataset.status = String(r.status);
    } catch (e) {
      out.textContent = `request failed: ${e.message}`;
    }
  };
  return h('div', { class: 'try' }, inputs.map((x) => x[2]), body, h('button', { type: 'button', onclick: go, text: 'Try it' }), out);
}

function operation(path, method, op, shared) {
  const params = [...shared, ...(op.parameters || [])].map(deref);
  const codes = Object.entries(op.responses || {}).sort(([a], [b]) => a.localeCompare(b));
  const responses = h('div', { class: 'responses' }, codes.map(([code, r]) => {
    r = deref(r);
    const content = Object.entries(r.content || {});
    return h('details', { class: 'resp' }, h('summary', {}, h('span', { class: `code c${code[0]}`, text: code }), ' ', r.description || ''),
      content.map(([type, c]) => h('div', {}, h('div', { class: 'ctype', text: type }), c.schema ? schemaView(c.schema) : null)),
      r.headers ? Object.entries(r.headers).map(([k, v]) => h('div', { class: 'hdr', text: `${k}: ${v.description || ''}` })) : null);
  }));
  const reqBody = op.requestBody ? Object.entries(deref(op.requestBody).content || {}).map(([type, c]) =>
    h('div', { class: 'body' }, h('h4', { text: `Request body (${type})` }), c.schema ? schemaView(c.schema) : null)) : null;
  return h('details', { class: 'op', id: `${method}-${path}`, 'data-path': path, 'data-method': method },
    h('summary', {}, h('span', { class: `m m-${method}`, text: method.toUpperCase() }), h('code', { text: path }), h('span', { class: 'sum', text: op.summary || '' })),
    op.description ? h('p', { class: 'desc', text: op.description }) : null,
    paramsTable(params), reqBody, h('h4', { text: 'Responses' }), responses, tryIt(path, method, op, params));
}

async function main() {
  const main = document.getElementById('docs');
  try {
    const r = await fetch('/api/openapi.json', { credentials: 'same-origin' });
    if (r.status === 401) { location.href = '/login'; return; }
    doc = await r.json();
  } catch (e) {
    main.textContent = `Could not load /api/openapi.json: ${e.message}`;
    return;
  }
  document.getElementById('version').textContent = `OpenAPI ${doc.openapi} · API ${doc.info.version}`;
  const filter = h('input', { type: 'search', id: 'filter', placeholder: 'Filter routes', 'aria-label': 'Filter routes' });
  const list = h('div', { id: 'ops' });
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) if (item[m]) list.append(operation(path, m, item[m], item.parameters || []));
  }
  filter.oninput = () => {
    const f = filter.value.toLowerCase();
    for (const op of list.children) op.hidden = f && !op.textContent.toLowerCase().includes(f);
  };
  const schemas = Object.entries((doc.components || {}).schemas || {}).map(([k]) =>
    h('details', { class: 'op', id: `schema-${k}` }, h('summary', {}, h('code', { text: k })), schemaView({ $ref: `#/components/schemas/${k}` })));
  main.replaceChildren(
    h('p', { class: 'desc', text: doc.info.description || '' }),
    filter, list,
    h('h2', { text: 'Schemas' }), h('div', {}, schemas),
  );
  document.body.dataset.ready = String(list.children.length);
}
main();
