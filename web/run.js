// One run: its stages, error, live logs, metric charts, tags, outputs.

import { h, fill, TERMINAL, STATUSES, statusBadge, setStatus, timeEl, fmtDuration, fmtNum, fmtBytes,
  runDuration, kvTable, anyValue, section, every, hashFor, showError } from './util.js';
import { api, withParams } from './api.js';
import { chartBox, lineChart, pointsFor } from './chart.js';

const MAX_LINES = 20000;
const STREAM_LABEL = { stdout: 'out', stderr: 'err', environment: 'env', input: 'in' };

// What a line shows: with carriage returns, only its last segment (a
// progress bar's latest state).
export function lineText(t) {
  t = String(t ?? '');
  if (!t.includes('\r')) return t;
  const segs = t.split('\r');
  for (let i = segs.length - 1; i >= 0; i--) if (segs[i] !== '') return segs[i];
  return '';
}

export function timeline(run) {
  const tr = run.transitions || {};
  const order = (s) => { const i = STATUSES.indexOf(s); return i < 0 ? 99 : i; };
  const stages = Object.entries(tr).filter(([, t]) => t)
    .map(([name, t]) => ({ name, t: Date.parse(t), iso: t }))
    .sort((a, b) => a.t - b.t || order(a.name) - order(b.name));
  if (!stages.length) return h('p.muted', 'No stages yet.');
  const errStage = run.error && run.error.stage;
  const now = Date.now();
  const items = stages.map((s, i) => {
    const next = stages[i + 1];
    const last = !next;
    const final = last && TERMINAL.has(s.name);
    const dur = next ? (next.t - s.t) / 1000 : final ? null : (now - s.t) / 1000;
    return h('li', { class: [last && !final ? 'current' : '', s.name === errStage ? 'failed' : ''].join(' ').trim() || null,
      dataset: { testid: 'stage', stage: s.name } },
    h('span.stage', { dataset: { status: s.name } }, s.name),
    h('span.muted', timeEl(s.iso)),
    dur != null ? h('span.dur', fmtDuration(dur) + (last ? '…' : '')) : null);
  });
  return h('ol.timeline', { dataset: { testid: 'timeline' } }, items);
}

function errorBox(run) {
  const e = run.error;
  if (!e) return null;
  return h('div.error', { dataset: { testid: 'run-error' } },
    h('strong', e.code || 'Error'), e.stage ? h('span', ' in stage ', h('b', e.stage)) : null,
    e.message ? h('pre', e.message) : null);
}

function logView(id, initial, ctx) {
  const lines = h('div.loglines', { dataset: { testid: 'logs' } });
  const follow = h('input', { type: 'checkbox', checked: true, dataset: { testid: 'log-follow' } });
  const state = h('span.muted', { dataset: { testid: 'log-state' } });
  const more = h('button.ghost', { type: 'button', hidden: true }, 'Load more');
  const sec = section('Logs', h('div.logbar', h('label', follow, ' follow'), state, more), lines);
  let last = 0, count = 0, queue = [], timer = null, ended = false;

  const flush = () => {
    timer = null;
    const frag = document.createDocumentFragment();
    for (const l of queue) {
      const st = l.stream || 'stdout';
      frag.append(h('div.line', { dataset: { testid: 'log-line', n: l.n, stream: st } },
        h('span.ln', l.n), h('span.st', STREAM_LABEL[st] || st), h('span.tx', lineText(l.text))));
    }
    queue = [];
    lines.append(frag);
    while (count > MAX_LINES) { lines.firstChild.remove(); count--; }
    if (follow.checked) lines.scrollTop = lines.scrollHeight;
  };
  const add = (l) => {
    if (!l || typeof l.n !== 'number') return;
    if (l.n === last && !queue.length && lines.lastChild) {
      // The same line again, grown (a progress line sent before its end).
      lines.lastChild.querySelector('.tx').textContent = lineText(l.text);
      return;
    }
    if (l.n <= last) return;
    last = l.n;
    queue.push(l);
    count++;
    if (!timer) timer = setTimeout(flush, 30);
  };
  const setEnded = (status) => {
    ended = true;
    state.textContent = `${last} lines` + (status ? `, ended ${status}` : ', ended');
    sec.dataset.ended = '1';
  };
  lines.addEventListener('scroll', () => {
    const atEnd = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 8;
    if (follow.checked !== atEnd && !timer) follow.checked = atEnd;
  });

  // An ended run: pages of /logs. A live one: the SSE stream, which sends
  // what is there and follows; polling /logs if EventSource gives up.
  const page = async () => {
    const r = await api.logs(id, last, 1000);
    for (const l of r.lines || []) add(l);
    if (typeof r.next === 'number' && r.next > last) last = r.next;
    return r;
  };
  const paged = async () => {
    const r = await page();
    more.hidden = !(typeof r.more === 'boolean' ? r.more : r.lines && r.lines.length >= 1000);
    if (!more.hidden) state.textContent = `${last} lines…`;
    else setEnded();
  };
  more.onclick = () => paged().catch((e) => showError(state, e));

  const poll = () => every(1500, async () => {
    const r = await page();
    if (r.ended && !(r.lines && r.lines.length)) { setEnded(); return false; }
  }, ctx.onLeave);

  const live = () => {
    state.textContent = 'following…';
    const es = new EventSource(api.logStreamUrl(id, last || undefined));
    ctx.onLeave(() => es.close());
    es.onmessage = (e) => { try { add(JSON.parse(e.data)); } catch (err) { console.warn(err); } };
    es.addEventListener('end', (e) => {
      es.close();
      let st = '';
      try { st = JSON.parse(e.data).status; } catch { /* none */ }
      setTimeout(() => setEnded(st), 40);
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED && !ended) { state.textContent = 'polling…'; poll(); }
    };
  };

  if (TERMINAL.has(initial.status)) paged().catch((e) => showError(state, e));
  else live();
  return sec;
}

function metricsView(id, ctx) {
  const table = h('div.scroll');
  const grid = h('div.charts', { dataset: { testid: 'charts' } });
  const sec = section('Metrics', table, grid);
  const charts = new Map(); // name -> {box, chart, count}

  const refresh = async () => {
    const list = ((await api.metrics(id)).metrics || []);
    fill(table, list.length ? h('table.grid', { dataset: { testid: 'metrics-table' } },
      h('thead', h('tr', h('th', 'Metric'), h('th', 'Kind'), ['Points', 'Last', 'Min', 'Max'].map((t) => h('th.num', t)))),
      h('tbody', list.map((m) => h('tr', h('td', m.name), h('td', m.kind || 'scalar'), h('td.num', m.count),
        h('td.num', fmtNum(m.last)), h('td.num', fmtNum(m.min)), h('td.num', fmtNum(m.max))))))
      : h('p.muted', 'No metrics logged.'));
    const scalars = list.filter((m) => (m.kind || 'scalar') === 'scalar' && m.count);
    // Every box in place first, so that each is measured at its own width.
    for (const m of scalars) {
      if (charts.has(m.name)) continue;
      const c = { box: chartBox(m.name), chart: null, count: 0 };
      charts.set(m.name, c);
      grid.append(c.box);
    }
    for (const m of scalars) {
      const c = charts.get(m.name);
      if (c.count === m.count) continue;
      c.count = m.count;
      const want = pointsFor(c.box.querySelector('.plot'));
      const r = await api.metric(id, m.name, want);
      if (!ctx.current()) return;
      Object.assign(c.box.dataset, { requested: want, count: r.count ?? m.count, downsampled: r.downsampled ? '1' : '0' });
      const ser = [{ label: m.name, points: r.points || [] }];
      if (c.chart) c.chart.update(ser);
      else c.chart = lineChart(c.box, ser, ctx.onLeave);
    }
  };
  return { sec, refresh };
}

function outputsView(id) {
  const body = h('div', h('p.muted', 'Loading…'));
  const refresh = async () => {
    const files = (await api.outputs(id)).files || [];
    fill(body, files.length ? h('table.grid', { dataset: { testid: 'outputs' } },
      h('tbody', files.map((f) => h('tr',
        h('td', h('a', { href: api.outputUrl(id, f.path), download: f.path.split('/').pop() }, f.path)),
        h('td.num', fmtBytes(f.size)))))) : h('p.muted', 'No outputs.'));
  };
  return { sec: section('Outputs', body), refresh };
}

// The files the run was given: its snapshot's list, the first SNAPSHOT_SHOWN.
const SNAPSHOT_SHOWN = 200;
function snapshotView(id) {
  const body = h('div', h('p.muted', 'Loading…'));
  const refresh = async () => {
    let snap;
    try {
      snap = await api.snapshot(id, SNAPSHOT_SHOWN);
    } catch (e) {
      if (e.status === 404) { fill(body, h('p.muted', 'No snapshot.')); return; }
      throw e;
    }
    const files = snap.files || [];
    fill(body, h('p.muted', h('code', snap.snapshot.slice(0, 12)), ' · ',
      snap.more ? `the first ${files.length} files` : `${files.length} files`),
    files.length ? h('div.scroll.files', h('table.grid', { dataset: { testid: 'snapshot-files' } },
      h('thead', h('tr', h('th', 'Path'), h('th.num', 'Size'))),
      h('tbody', files.map((f) => h('tr', h('td', h('code', f.path)), h('td.num', fmtBytes(f.size))))))) : null);
  };
  return { sec: section('Snapshot', body), refresh };
}

export async function runView(el, ctx) {
  let run = await api.run(ctx.arg);
  if (run.kind === 'sweep') { location.replace(hashFor('sweep', run.id)); return; }
  [run] = await withParams([run]);
  const params = run.params;
  const id = run.id;
  document.title = `${id} · runyard`;

  const badge = statusBadge(run.status);
  const cancelBtn = h('button.danger', { type: 'button', dataset: { testid: 'cancel' }, onclick: () => cancel(cancelBtn) }, 'Cancel run');
  const head = h('div.head', h('h1', h('span.id', { dataset: { testid: 'run-id' } }, id), ' ', h('span.muted', '#' + run.seq)),
    badge, cancelBtn);
  const summary = h('div');
  const stages = h('div');
  const errSlot = h('div');
  const extra = h('div.two');
  const metrics = metricsView(id, ctx);
  const outputs = outputsView(id);
  const snapshot = snapshotView(id);

  const cancel = async (btn) => {
    btn.disabled = true;
    try { run = { ...run, ...(await api.cancel(id)) }; draw(); } catch (e) { showError(errSlot, e); btn.disabled = false; }
  };

  function draw() {
    const live = !TERMINAL.has(run.status);
    setStatus(badge, run.status);
    cancelBtn.hidden = !live || run.status === 'CancelRequested';
    const ps = run.params && Object.keys(run.params).length ? run.params : null;
    fill(summary, h('dl.facts',
      h('dt', 'Experiment'), h('dd', h('a', { href: hashFor('runs', '', { experiment: run.experiment }) }, run.experiment)),
      run.parent ? [h('dt', 'Sweep'), h('dd', h('a', { href: hashFor('sweep', run.parent) }, run.parent))] : null,
      h('dt', 'Command'), h('dd', h('code', { dataset: { testid: 'command' } }, (run.command || []).join(' '))),
      ps ? [h('dt', 'Parameters'), h('dd', Object.entries(ps).map(([k, v]) => h('span.chip', `${k} ${v}`)))] : null,
      h('dt', 'Created'), h('dd', timeEl(run.created_at)),
      h('dt', 'Started'), h('dd', timeEl(run.started_at) || h('span.muted', '—')),
      h('dt', 'Ended'), h('dd', timeEl(run.ended_at) || h('span.muted', '—')),
      h('dt', 'Duration'), h('dd', fmtDuration(runDuration(run)) || '—'),
      run.exit_code != null ? [h('dt', 'Exit code'), h('dd', String(run.exit_code))] : null,
      run.kind && run.kind !== 'run' ? [h('dt', 'Kind'), h('dd', run.kind)] : null));
    fill(stages, timeline(run));
    fill(errSlot, errorBox(run) || '');
    fill(extra, 
      section('Tags', kvTable(run.tags, 'tags')),
      section('Properties', kvTable(run.properties, 'properties')),
      section('Inputs', anyValue(run.inputs && (Array.isArray(run.inputs) || Object.keys(run.inputs).length) ? run.inputs : [])),
      run.environment ? section('Environment', anyValue(run.environment)) : null,
      run.attempts && run.attempts.length ? section('Attempts', anyValue(run.attempts)) : null);
  }

  draw();
  el.append(head, h('div.two', section('Run', summary), section('Stages', stages, errSlot)),
    metrics.sec, logView(id, run, ctx), outputs.sec, extra, snapshot.sec);
  el.dataset.runId = id;
  await Promise.all([metrics.refresh(), outputs.refresh(), snapshot.refresh()].map((p) => p.catch((e) => console.warn(e))));

  if (TERMINAL.has(run.status)) return;
  every(1500, async () => {
    run = { params, ...(await api.run(id)) };
    if (!ctx.current()) return false;
    draw();
    await metrics.refresh();
    if (TERMINAL.has(run.status)) { await outputs.refresh(); return false; }
  }, ctx.onLeave);
}
