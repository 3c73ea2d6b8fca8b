// The daemon's JSON API. Reads go with the HttpOnly cookie the daemon set
// at /?token=...; a POST also carries X-Runyard-Token, which the page learns
// from /api/session (answered only to the cookie, same origin).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, headers) {
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'Unreachable', `the daemon did not answer (${e.message})`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const err = body && body.error;
    throw new ApiError(res.status, err && err.code, (err && err.message) || text.slice(0, 200) || res.statusText);
  }
  return body;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

const enc = encodeURIComponent;
const encPath = (p) => p.split('/').map(enc).join('/');

export const get = (path) => call('GET', path);

let session = null;
export function getSession() {
  if (!session) session = get('/api/session').catch((e) => { session = null; throw e; });
  return session;
}

export async function post(path) {
  const s = await getSession();
  return call('POST', path, { 'X-Runyard-Token': s.token });
}

export const api = {
  runs: (p) => get('/api/runs' + qs(p)),
  run: (id) => get(`/api/runs/${enc(id)}`),
  logs: (id, after, limit) => get(`/api/runs/${enc(id)}/logs` + qs({ after, limit })),
  logStreamUrl: (id, after) => `/api/runs/${enc(id)}/logs/stream` + qs({ after }),
  metrics: (id) => get(`/api/runs/${enc(id)}/metrics`),
  metric: (id, name, points) => get(`/api/runs/${enc(id)}/metrics/${enc(name)}` + qs({ points })),
  outputs: (id) => get(`/api/runs/${enc(id)}/outputs`),
  outputUrl: (id, path) => `/api/runs/${enc(id)}/outputs/${encPath(path)}`,
  snapshot: (id, limit) => get(`/api/runs/${enc(id)}/snapshot` + qs({ limit })),
  children: (id) => get(`/api/runs/${enc(id)}/children`),
  experiments: () => get('/api/experiments'),
  models: () => get('/api/models'),
  services: () => get('/api/services'),
  cancel: (id) => post(`/api/runs/${enc(id)}/cancel`),
};

// Runs of sweeps get their parameters ({"--lr": 0.1}) from their sweep's
// children where the run object lacks them.
export async function withParams(runs) {
  const parents = [...new Set(runs.filter((r) => r.parent && !r.params).map((r) => r.parent))];
  const byId = new Map();
  await Promise.all(parents.map((p) => api.children(p).then((c) => {
    for (const k of c.runs || []) byId.set(k.id, k);
  }).catch(() => {})));
  return runs.map((r) => {
    const k = byId.get(r.id);
    return k && !r.params ? { ...r, params: k.params, metrics: r.metrics || k.metrics } : r;
  });
}
