// A sweep: its definition, children with their parameters and metric, a
// scatter of a parameter against the metric, early-termination decisions.

import { h, fill, TERMINAL, statusBadge, setStatus, timeEl, fmtDuration, fmtNum, runDuration,
  kvTable, section, every, hashFor, showError } from './util.js';
import { api } from './api.js';
import { chartBox, scatterChart } from './chart.js';

export async function sweepView(el, ctx) {
  const id0 = ctx.arg;
  let run = await api.run(id0);
  if (run.kind && run.kind !== 'sweep') { location.replace(hashFor('run', run.id)); return; }
  const id = run.id;
  document.title = `${id} · runyard`;
  const badge = statusBadge(run.status);
  const cancelBtn = h('button.danger', { type: 'button', dataset: { testid: 'cancel' }, onclick: () => cancel(cancelBtn) }, 'Cancel sweep');
  const head = h('div.head', h('h1', h('span.id', { dataset: { testid: 'sweep-id' } }, id), ' ', h('span.muted', '#' + run.seq)),
    badge, cancelBtn);
  const info = h('div');
  const bestSlot = h('div');
  const kids = h('div.scroll');
  const scatterSlot = h('div');
  const decisions = h('div');
  const errSlot = h('div');
  el.append(head, errSlot, h('div.two', section('Sweep', info), section('Best run', bestSlot)),
    section('Runs', kids), section('Parameter against metric', scatterSlot), section('Early termination', decisions));

  let children = [];
  let param = ctx.params.get('param') || '';
  let chartLeave = [];

  const cancel = async (btn) => {
    btn.disabled = true;
    try { await api.cancel(id); await refresh(); } catch (e) { showError(errSlot, e); btn.disabled = false; }
  };

  function draw() {
    const sw = run.sweep || {};
    const def = sw.definition || {};
    const metric = def.metric || sw.metric || run.metric || '';
    const goal = def.goal || sw.goal || '';
    const best = sw.best || null;
    const live = !TERMINAL.has(run.status);
    setStatus(badge, run.status);
    cancelBtn.hidden = !live || run.status === 'CancelRequested';
    const counts = Object.entries(sw.counts || {}).filter(([, n]) => n);
    const pol = def.policy && typeof def.policy === 'object'
      ? Object.entries(def.policy).map(([k, v]) => (k === 'name' ? v : `${k}=${v}`)).join(', ') : def.policy;
    fill(info, h('dl.facts',
      h('dt', 'Experiment'), h('dd', h('a', { href: hashFor('runs', '', { experiment: run.experiment }) }, run.experiment)),
      h('dt', 'Metric'), h('dd', h('b', metric), goal ? ` (${goal})` : ''),
      def.sampling ? [h('dt', 'Sampling'), h('dd', def.sampling)] : null,
      pol ? [h('dt', 'Policy'), h('dd', pol)] : null,
      def.max_total != null ? [h('dt', 'Runs'), h('dd', `${children.length} of ${def.max_total}`,
        def.max_concurrent ? `, ${def.max_concurrent} at a time` : '')] : null,
      h('dt', 'Command'), h('dd', h('code', (def.command || run.command || []).join(' '))),
      h('dt', 'Parameters'), h('dd', kvTable(def.params)),
      counts.length ? [h('dt', 'Status'), h('dd', counts.map(([s, n]) => h('span.chip', { dataset: { status: s } }, `${n} ${s}`)))] : null,
      h('dt', 'Created'), h('dd', timeEl(run.created_at)),
      h('dt', 'Duration'), h('dd', fmtDuration(runDuration(run)) || '—')));
    if (run.error) {
      fill(errSlot, h('div.error', h('strong', run.error.code || 'Error'), ': ', run.error.message || ''));
    }

    const bestVal = best && (typeof best.metric === 'number' ? best.metric : best.value);
    fill(bestSlot, best && best.id ? h('div', { dataset: { testid: 'sweep-best', runId: best.id } },
      h('p', h('a', { href: hashFor('run', best.id) }, best.seq ? `#${best.seq} ` : '', best.id)),
      h('p', h('span.big', fmtNum(bestVal)), ' ', metric),
      h('p', h('code', (best.arguments || []).join(' ') ||
        Object.entries(best.params || {}).map(([k, v]) => `${k} ${v}`).join(' ')))) : h('p.muted', 'None yet.'));

    // Children: parameters and the metric, best marked.
    const pnames = [...new Set([...Object.keys(def.params || {}), ...children.flatMap((c) => Object.keys(c.params || {}))])];
    const value = (c) => (c.metrics || {})[metric];
    fill(kids, h('table.grid', { dataset: { testid: 'sweep-children' } },
      h('thead', h('tr', h('th', 'Status'), h('th', 'Run'), pnames.map((p) => h('th', p)),
        h('th.num', metric || 'metric'), h('th', 'Duration'))),
      h('tbody', children.length ? children.map((c) => h('tr', {
        class: best && c.id === best.id ? 'best' : null,
        dataset: { testid: 'sweep-child', runId: c.id, status: c.status } },
      h('td', statusBadge(c.status)),
      h('td.id', h('a', { href: hashFor('run', c.id) }, c.id), ' ', h('span.muted', '#' + c.seq)),
      pnames.map((p) => h('td.num', fmtNum((c.params || {})[p]))),
      h('td.num', fmtNum(value(c))),
      h('td.num', fmtDuration(runDuration(c))))) : h('tr', h('td.empty', { colSpan: 4 + pnames.length }, 'No runs yet.')))));
    if (children.length >= 2) {
      kids.append(h('p', h('a', { href: hashFor('compare', '', { runs: children.slice(0, 20).map((c) => c.id).join(',') }) },
        `Compare ${Math.min(20, children.length)} runs`)));
    }

    // Scatter of one parameter against the metric.
    for (const f of chartLeave) f();
    chartLeave = [];
    if (!pnames.length) { fill(scatterSlot, h('p.muted', 'No parameters.')); return; }
    if (!pnames.includes(param)) param = pnames[0];
    const pick = h('select', { dataset: { testid: 'scatter-param' },
      onchange: (e) => { param = e.target.value; draw(); } },
    pnames.map((p) => h('option', { value: p, selected: p === param }, p)));
    const box = chartBox(`${metric} by ${param}`, { testid: 'scatter' });
    box.classList.add('wide');
    fill(scatterSlot, h('label', 'Parameter ', pick), box);
    const pts = children.filter((c) => c.params && c.params[param] != null && typeof value(c) === 'number')
      .map((c) => ({ x: c.params[param], y: value(c), label: c.id }));
    if (!pts.length) { box.querySelector('.plot').replaceChildren(h('p.muted', 'No run has the metric yet.')); box.dataset.points = '0'; }
    else scatterChart(box, pts, param, metric, (f) => chartLeave.push(f));

    const ds = sw.decisions || [];
    fill(decisions, ds.length ? h('table.grid', { dataset: { testid: 'decisions' } },
      h('thead', h('tr', ['Run', 'Policy', 'Reason', 'At'].map((t) => h('th', t)))),
      h('tbody', ds.map((d) => h('tr', { dataset: { testid: 'decision' } },
        h('td', h('a', { href: hashFor('run', d.run) }, d.run)), h('td', d.policy || ''),
        h('td', d.reason || ''), h('td', timeEl(d.at))))))
      : h('p.muted', def.policy && def.policy.name && def.policy.name !== 'none'
        ? 'No run was stopped early.' : 'No early-termination policy.'));
  }

  async function refresh() {
    const [r, c] = await Promise.all([api.run(id), api.children(id)]);
    if (!ctx.current()) return;
    run = r;
    children = c.runs || [];
    draw();
  }
  ctx.onLeave(() => { for (const f of chartLeave) f(); });
  await refresh();
  every(2500, async () => {
    const wasLive = !TERMINAL.has(run.status) || children.some((c) => !TERMINAL.has(c.status));
    if (!wasLive) return false;
    await refresh();
  }, ctx.onLeave);
}
