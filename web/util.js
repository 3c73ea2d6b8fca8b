// DOM and formatting helpers shared by the views.

// h('a.cls', {href, dataset: {...}, onclick}, child, ...): an element.
// Children: nodes, strings (as text), numbers, arrays of them; null and
// false are skipped. Text is never parsed as HTML.
export function h(tag, attrs, ...kids) {
  const [name, ...cls] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (cls.length) el.className = cls.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    kids.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && k !== 'list' && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}

// Replace el's children (null and false skipped, as in h()).
export function fill(el, ...kids) {
  el.textContent = '';
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

export const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);
export const STATUSES = ['Queued', 'Preparing', 'Scaling', 'Running', 'CancelRequested',
  'Finalizing', 'Completed', 'Failed', 'Canceled'];

export function statusBadge(status) {
  return setStatus(h('span.status', { dataset: { testid: 'status' } }), status);
}

// Update a badge in place (a redraw must not replace what one may click).
export function setStatus(el, status) {
  el.dataset.status = status || '';
  el.textContent = status || '?';
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// An ISO time as local "YYYY-MM-DD HH:MM:SS" (the ISO string in the title).
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, fmtTime(iso)) : '';
}

// Seconds as "12ms", "3.4s", "2m 05s", "1h 02m", "3d 04h".
export function fmtDuration(s) {
  if (s == null || !isFinite(s)) return '';
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${pad(hr % 24)}h`;
}

// A run's duration: its own, or so far while it runs.
export function runDuration(r) {
  if (r.duration != null) return r.duration;
  if (r.started_at && !r.ended_at) return (Date.now() - Date.parse(r.started_at)) / 1000;
  return null;
}

export function fmtNum(v) {
  if (v == null) return '';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return String(+v.toPrecision(4));
}

export function fmtBytes(n) {
  if (n == null) return '';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// The arguments of a run's command: what tells a sweep's runs apart.
export function runArgs(r) {
  const c = Array.isArray(r.command) ? r.command : [];
  return c.slice(1).join(' ');
}

export function runHref(r) {
  const id = typeof r === 'string' ? r : r.id;
  return (r && r.kind === 'sweep' ? '#/sweep/' : '#/run/') + encodeURIComponent(id);
}

// A plain value of unknown shape as a node: objects as key/value tables,
// arrays of objects as tables, scalars as text.
export function anyValue(v) {
  if (v == null) return h('span.muted', '—');
  if (Array.isArray(v)) {
    if (!v.length) return h('span.muted', 'none');
    if (v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      const keys = [...new Set(v.flatMap(Object.keys))];
      return h('div.scroll', h('table.grid',
        h('thead', h('tr', keys.map((k) => h('th', k)))),
        h('tbody', v.map((row) => h('tr', keys.map((k) => h('td', scalar(row[k]))))))));
    }
    return h('span', v.map(scalar).join(', '));
  }
  if (typeof v === 'object') return kvTable(v);
  return h('span', String(v));
}

function scalar(v) {
  if (v == null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return typeof v === 'number' ? fmtNum(v) : String(v);
}

export function kvTable(obj, testid) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('span.muted', 'none');
  return h('table.kv', { dataset: testid ? { testid } : null },
    h('tbody', entries.map(([k, v]) => h('tr', h('th', k),
      h('td', v && typeof v === 'object' ? anyValue(v) : scalar(v))))));
}

export function section(title, ...body) {
  return h('section.card', h('h2', title), ...body);
}

// Run fn every ms while the view is the current one (see app.js onLeave).
export function every(ms, fn, onLeave) {
  let t = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { if ((await fn()) === false) return; } catch (e) { console.warn(e); }
    }
    if (!stopped) t = setTimeout(tick, ms);
  };
  t = setTimeout(tick, ms);
  onLeave(() => { stopped = true; clearTimeout(t); });
}

export function hashFor(name, arg, params) {
  let s = '#/' + name + (arg ? '/' + encodeURIComponent(arg) : '');
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v != null && v !== '') p.set(k, v);
  const q = p.toString();
  return q ? s + '?' + q : s;
}

export function showError(el, e) {
  fill(el, h('div.error', { dataset: { testid: 'error' } },
    e.status === 401
      ? [h('strong', 'Not signed in. '),
        'Open the link that ', h('code', 'runyard ui'), ' prints: it carries the token once, and the browser keeps it.']
      : [h('strong', e.code || 'Error'), ': ', e.message]));
}
