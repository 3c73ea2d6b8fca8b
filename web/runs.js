// The runs table: filters in the URL, keyset pages, runs picked to compare.

import { h, fill, STATUSES, statusBadge, timeEl, fmtDuration, fmtNum, runArgs, runHref,
  runDuration, hashFor, every, showError } from './util.js';
import { api } from './api.js';

const PAGE = 50;
const FILTERS = ['experiment', 'status', 'q', 'tag', 'kind', 'parent'];
// Kept in the URL, but not filters of the form: the page size and the order
// (sort=seq or metric:NAME, order=desc or asc; the daemon sorts, by keyset).
const KEEP = ['limit', 'sort', 'order'];
// Picked runs, kept while the page is open (across pages and filters).
export const picked = new Map();

// The metric columns of a page of runs: the keys most runs have, a few at most.
export function metricColumns(runs, max = 4) {
  const n = new Map();
  for (const r of runs) for (const k of Object.keys(r.metrics || {})) n.set(k, (n.get(k) || 0) + 1);
  return [...n.keys()].sort((a, b) => n.get(b) - n.get(a) || a.localeCompare(b)).slice(0, max);
}

export async function runsView(el, ctx) {
  const p = ctx.params;
  const f = Object.fromEntries([...FILTERS, ...KEEP].map((k) => [k, p.get(k) || '']));
  const before = p.get('before') || '';
  const limit = Math.min(500, Math.max(1, parseInt(p.get('limit'), 10) || PAGE));
  const go = (over) => {
    const next = { ...f, ...over };
    location.hash = hashFor('runs', '', next);
  };

  const expList = h('datalist', { id: 'experiments' });
  const field = (label, input) => h('label', h('span', label), input);
  const exp = h('input', { name: 'experiment', value: f.experiment, list: 'experiments',
    placeholder: 'any', dataset: { testid: 'filter-experiment' }, autocomplete: 'off' });
  const status = h('select', { name: 'status', dataset: { testid: 'filter-status' } },
    h('option', { value: '' }, 'any'),
    STATUSES.map((s) => h('option', { value: s, selected: s === f.status }, s)));
  const kind = h('select', { name: 'kind', dataset: { testid: 'filter-kind' } },
    [['', 'any'], ['run', 'runs'], ['sweep', 'sweeps'], ['interactive', 'interactive']].map(([v, t]) =>
      h('option', { value: v, selected: v === f.kind }, t)));
  const q = h('input', { name: 'q', type: 'search', value: f.q, placeholder: 'id, command…',
    dataset: { testid: 'filter-q' } });
  const tag = h('input', { name: 'tag', value: f.tag, placeholder: 'key or key=value',
    dataset: { testid: 'filter-tag' }, size: 14 });
  const apply = () => go({ experiment: exp.value.trim(), status: status.value, kind: kind.value,
    q: q.value.trim(), tag: tag.value.trim() });
  const form = h('form.filters', { dataset: { testid: 'filters' },
    onsubmit: (e) => { e.preventDefault(); apply(); } },
  field('Experiment', exp), field('Status', status), field('Kind', kind), field('Search', q),
  field('Tag', tag), expList, h('button', { type: 'submit' }, 'Filter'),
  (f.experiment || f.status || f.kind || f.q || f.tag || f.parent)
    ? h('a.button.ghost', { href: '#/runs' }, 'Clear') : null,
  f.parent ? h('span.chip', 'sweep ', h('a', { href: '#/sweep/' + encodeURIComponent(f.parent) }, f.parent)) : null);
  for (const s of [status, kind]) s.addEventListener('change', apply);
  exp.addEventListener('change', apply);

  const cmpBtn = h('a.button', { dataset: { testid: 'compare-button' } });
  const clearPick = h('button.ghost', { type: 'button', onclick: () => { picked.clear(); render(); } }, 'Unpick');
  const pickBar = h('div.pickbar', cmpBtn, clearPick);
  const table = h('div.scroll');
  const pager = h('div.pager');
  el.append(h('div.head', h('h1', 'Runs'), pickBar), form, table, pager);

  api.experiments().then((r) => fill(expList, 
    ...(r.experiments || []).map((e) => h('option', { value: e.name }, `${e.runs} runs`)))).catch(() => {});

  let page = null;
  const load = async () => {
    const params = { limit, before };
    for (const k of FILTERS) params[k] = f[k];
    params.sort = f.sort;
    params.order = f.order;
    page = await api.runs(params);
    if (ctx.current()) render();
  };

  function updatePick() {
    const n = picked.size;
    const ids = [...picked.keys()];
    cmpBtn.textContent = n ? `Compare ${n}` : 'Compare';
    cmpBtn.classList.toggle('disabled', n < 2 || n > 20);
    cmpBtn.href = n >= 2 && n <= 20 ? hashFor('compare', '', { runs: ids.join(',') }) : '#' + location.hash.slice(1);
    cmpBtn.title = n < 2 ? 'pick 2 to 20 runs to compare' : n > 20 ? 'at most 20 runs' : '';
    clearPick.hidden = !n;
  }

  function render() {
    const runs = page.runs || [];
    const sortMetric = f.sort.startsWith('metric:') ? f.sort.slice(7) : '';
    let cols = metricColumns(runs);
    if (sortMetric && !cols.includes(sortMetric)) cols = [sortMetric, ...cols.slice(0, 3)];
    // A header that sorts by its column, newest or largest first, then the other way.
    const sorter = (key, label, cls) => {
      const on = (f.sort || 'seq') === key;
      const order = on && f.order !== 'asc' ? 'asc' : 'desc';
      return h('th' + (cls || ''), h('a.sort', { href: hashFor('runs', '', { ...f, sort: key === 'seq' ? '' : key, order: order === 'desc' ? '' : order }),
        dataset: { testid: 'sort', key }, title: 'sort by ' + label, class: on ? 'on' : null },
      label, on ? (f.order === 'asc' ? ' ▲' : ' ▼') : ''));
    };
    const tagCell = (tags) => h('td.tags.opt', Object.entries(tags || {}).map(([k, v]) =>
      h('a.chip', { href: hashFor('runs', '', { ...f, tag: v === '' ? k : `${k}=${v}` }) },
        v === '' ? k : `${k}=${v}`)));
    const rows = runs.map((r) => {
      const box = h('input', { type: 'checkbox', checked: picked.has(r.id), 'aria-label': 'pick ' + r.id,
        dataset: { testid: 'pick' },
        onchange: (e) => { if (e.target.checked) picked.set(r.id, r); else picked.delete(r.id); updatePick(); } });
      return h('tr', { dataset: { testid: 'run-row', runId: r.id, status: r.status, kind: r.kind || 'run' } },
        h('td.pick', box),
        h('td', statusBadge(r.status)),
        h('td.id', h('a', { href: runHref(r) }, r.id), ' ', h('span.muted', '#' + r.seq),
          r.kind && r.kind !== 'run' ? h('span.kind', r.kind) : null),
        h('td', h('a', { href: hashFor('runs', '', { ...f, experiment: r.experiment }) }, r.experiment)),
        h('td.args', { title: (r.command || []).join(' ') }, h('code', runArgs(r))),
        h('td.time.opt', timeEl(r.started_at || r.created_at)),
        h('td.num', fmtDuration(runDuration(r))),
        cols.map((c) => h('td.num', { dataset: { metric: c } }, fmtNum((r.metrics || {})[c]))),
        tagCell(r.tags));
    });
    fill(table, h('table.grid.runs', { dataset: { testid: 'runs-table' } },
      h('thead', h('tr', h('th', ''), h('th', 'Status'), sorter('seq', 'Run'), h('th', 'Experiment'),
        h('th', 'Arguments'), h('th.opt', 'Started'), h('th', 'Duration'),
        cols.map((c) => sorter('metric:' + c, c, '.num')), h('th.opt', 'Tags'))),
      h('tbody', rows.length ? rows
        : h('tr', h('td.empty', { colSpan: 8 + cols.length }, 'No runs match.')))));
    fill(pager, 
      before ? h('a.button.ghost', { href: hashFor('runs', '', f), dataset: { testid: 'newest' } }, f.sort ? '« First' : '« Newest') : null,
      page.next != null
        ? h('a.button', { href: hashFor('runs', '', { ...f, before: page.next }), dataset: { testid: 'next-page' } }, f.sort || f.order ? 'Next »' : 'Older »')
        : null,
      h('span.muted', runs.length ? `${runs.length} runs, #${runs[0].seq}–#${runs[runs.length - 1].seq}` : ''));
    updatePick();
  }

  try {
    await load();
  } catch (e) {
    showError(table, e);
    return;
  }
  // The newest page follows new runs and status changes.
  if (!before) every(4000, load, ctx.onLeave);
  else every(8000, async () => { if (page.runs.some((r) => !['Completed', 'Failed', 'Canceled'].includes(r.status))) await load(); }, ctx.onLeave);
}
