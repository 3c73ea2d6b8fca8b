// runyard's page: a single page app over the daemon's JSON API, with hash
// routes so that a view and its filters can be shared as a URL:
//   #/runs?experiment=E&status=S&q=TEXT&tag=K=V&kind=run&before=SEQ
//   #/run/ID   #/sweep/ID   #/compare?runs=ID,ID   #/models

import { h, fill, showError } from './util.js';
import { getSession } from './api.js';
import { runsView } from './runs.js';
import { runView } from './run.js';
import { compareView } from './compare.js';
import { sweepView } from './sweep.js';
import { modelsView } from './models.js';

const views = { runs: runsView, run: runView, sweep: sweepView, compare: compareView, models: modelsView };

const main = document.getElementById('view');
let leaving = [];
let seq = 0;

export function parseHash(hash = location.hash) {
  const s = hash.replace(/^#\/?/, '');
  const q = s.indexOf('?');
  const path = q < 0 ? s : s.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : s.slice(q + 1));
  const [name, ...rest] = path.split('/');
  return { name: name || 'runs', arg: rest.length ? decodeURIComponent(rest.join('/')) : '', params };
}

async function route() {
  for (const f of leaving) { try { f(); } catch (e) { console.warn(e); } }
  leaving = [];
  const my = ++seq;
  const r = parseHash();
  const view = views[r.name];
  const tab = r.name === 'sweep' || (r.name === 'runs' && r.params.get('kind') === 'sweep') ? 'sweeps'
    : r.name === 'models' ? 'models' : 'runs';
  for (const a of document.querySelectorAll('nav a[data-nav]')) a.classList.toggle('active', a.dataset.nav === tab);
  document.title = 'runyard';
  const el = h('div.page', { dataset: { view: r.name } });
  fill(main, el);
  if (!view) {
    el.append(h('p', 'No such page. ', h('a', { href: '#/runs' }, 'Runs')));
    return;
  }
  const ctx = {
    arg: r.arg,
    params: r.params,
    onLeave: (f) => (my === seq ? leaving.push(f) : f()),
    current: () => my === seq,
  };
  document.body.dataset.loading = '1';
  try {
    await view(el, ctx);
  } catch (e) {
    if (my === seq) showError(el, e);
  } finally {
    if (my === seq) delete document.body.dataset.loading;
  }
}

window.addEventListener('hashchange', route);
route();
getSession().then((s) => {
  const v = document.getElementById('version');
  if (v && s && s.version) v.textContent = 'runyard ' + s.version;
}).catch(() => {});
