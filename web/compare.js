// 2 to 20 runs side by side: arguments, final metrics, overlaid charts.

import { h, statusBadge, fmtDuration, fmtNum, runArgs, runHref, runDuration, section,
  hashFor } from './util.js';
import { api, withParams } from './api.js';
import { chartBox, lineChart, pointsFor, PALETTE } from './chart.js';

function swatch(i) {
  const s = h('span.swatch');
  s.style.background = PALETTE[i % PALETTE.length];
  return s;
}

export async function compareView(el, ctx) {
  let ids = [...new Set((ctx.params.get('runs') || '').split(',').map((s) => s.trim()).filter(Boolean))];
  const dropped = ids.length > 20 ? ids.length - 20 : 0;
  ids = ids.slice(0, 20);
  el.append(h('div.head', h('h1', 'Compare')));
  if (ids.length < 2) {
    el.append(h('p', 'Pick 2 to 20 runs in the ', h('a', { href: '#/runs' }, 'runs table'), ' to compare them.'));
    return;
  }
  if (dropped) el.append(h('p.warn', `Only the first 20 runs are compared (${dropped} left out).`));

  const runs = await withParams(await Promise.all(ids.map((id) => api.run(id))));
  const lists = await Promise.all(runs.map((r) => api.metrics(r.id).then((m) => m.metrics || []).catch(() => [])));
  const label = (r) => {
    const a = runArgs(r);
    return `#${r.seq}` + (a ? ' ' + (a.length > 32 ? a.slice(0, 31) + '…' : a) : '');
  };
  const without = (id) => hashFor('compare', '', { runs: ids.filter((x) => x !== id).join(',') });

  // Final metrics: the run object's, else the metric list's last values.
  const finals = runs.map((r, i) => {
    const m = { ...(r.metrics || {}) };
    for (const s of lists[i]) if (!(s.name in m) && typeof s.last === 'number') m[s.name] = s.last;
    return m;
  });
  const names = [...new Set(finals.flatMap(Object.keys))].sort();
  const differs = (vals) => new Set(vals.map((v) => JSON.stringify(v))).size > 1;
  const row = (title, vals, fmt = (v) => v) => h('tr', { class: differs(vals) ? 'differs' : null },
    h('th', title), vals.map((v) => h('td', fmt(v))));
  const params = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))];

  el.append(section('Runs', h('div.scroll', h('table.grid.compare', { dataset: { testid: 'compare-table' } },
    h('thead', h('tr', h('th', ''), runs.map((r, i) => h('th', { dataset: { testid: 'compare-run', runId: r.id } },
      swatch(i),
      h('a', { href: runHref(r) }, `#${r.seq}`), ' ', statusBadge(r.status), ' ',
      h('a.x', { href: without(r.id), title: 'leave out' }, '×'))))),
    h('tbody',
      row('Run', runs.map((r) => r.id), (v) => h('code', v)),
      row('Experiment', runs.map((r) => r.experiment)),
      row('Arguments', runs.map(runArgs), (v) => h('code', v)),
      params.map((p) => row(p, runs.map((r) => (r.params || {})[p]), fmtNum)),
      row('Duration', runs.map((r) => fmtDuration(runDuration(r)))),
      names.map((n) => row(n, finals.map((m) => m[n]), (v) => h('span.num', fmtNum(v)))))))));

  // One chart per scalar metric, a series per run that has it.
  const count = new Map();
  lists.forEach((l) => l.forEach((s) => {
    if ((s.kind || 'scalar') === 'scalar' && s.count) count.set(s.name, (count.get(s.name) || 0) + 1);
  }));
  const chartNames = [...count.keys()].sort((a, b) => count.get(b) - count.get(a) || a.localeCompare(b));
  const grid = h('div.charts', { dataset: { testid: 'charts' } });
  el.append(section('Metrics', chartNames.length ? grid : h('p.muted', 'No scalar metrics.')));
  const boxes = chartNames.map((name) => grid.appendChild(chartBox(name)));
  await Promise.all(chartNames.map(async (name, k) => {
    const box = boxes[k];
    const want = pointsFor(box.querySelector('.plot'));
    box.dataset.requested = want;
    const ser = await Promise.all(runs.map(async (r, i) => {
      if (!lists[i].some((s) => s.name === name)) return null;
      const res = await api.metric(r.id, name, want);
      return { label: label(r), points: res.points || [], color: i };
    }));
    if (!ctx.current()) return;
    lineChart(box, ser.filter(Boolean), ctx.onLeave);
  }));
}
