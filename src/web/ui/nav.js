// ---------------------------------------------------------------------------------------------
// Router: #live, #recordings?day=YYYY-MM-DD, #player?t=MS, #export?from=MS&to=MS, #settings, #system

export const views = {};
export let current = null;
export function route() {
  const [name, query] = (location.hash.slice(1) || 'live').split('?');
  const params = new URLSearchParams(query || '');
  const view = views[name] ? name : 'live';
  if (current && current !== view && views[current].leave) views[current].leave();
  if (current && current !== view) window.scrollTo(0, 0);
  for (const sec of document.querySelectorAll('.view')) sec.hidden = sec.dataset.view !== view;
  for (const a of document.querySelectorAll('.tabs a')) {
    const on = a.dataset.view === view || (view === 'player' && a.dataset.view === 'recordings');
    a.classList.toggle('on', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  current = view;
  document.title = `blackbox · ${view[0].toUpperCase()}${view.slice(1)}`;
  views[view].enter(params);
}
