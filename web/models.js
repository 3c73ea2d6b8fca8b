// Registered models and the services that serve them.

import { h, fill, timeEl, section, hashFor, every, showError } from './util.js';
import { api } from './api.js';

// A model's run: an id, or {id, seq}.
function runLink(r) {
  const id = r && typeof r === 'object' ? r.id : r;
  if (!id) return h('span.muted', '—');
  return h('a', { href: hashFor('run', id) }, r.seq ? `#${r.seq} ` : '', id);
}

export async function modelsView(el, ctx) {
  const models = h('div.scroll');
  const services = h('div.scroll');
  el.append(h('div.head', h('h1', 'Models and services')),
    section('Models', models), section('Services', services));

  const loadModels = async () => {
    const ms = (await api.models()).models || [];
    fill(models, ms.length ? h('table.grid', { dataset: { testid: 'models' } },
      h('thead', h('tr', ['Model', 'Version', 'Framework', 'Run', 'Registered', 'Services'].map((t) => h('th', t)))),
      h('tbody', ms.map((m) => h('tr', { dataset: { testid: 'model-row', modelId: m.id } },
        h('td', h('b', m.name)), h('td.num', m.version), h('td', [m.framework, m.framework_version].filter(Boolean).join(' ')),
        h('td', runLink(m.run)),
        h('td', timeEl(m.created_at)),
        h('td', (m.services || []).map((s) => h('span.chip', s)))))))
      : h('p.muted', 'No models registered.'));
  };
  const loadServices = async () => {
    const ss = (await api.services()).services || [];
    fill(services, ss.length ? h('table.grid', { dataset: { testid: 'services' } },
      h('thead', h('tr', ['Service', 'State', 'Model', 'Scoring URI', 'Restarts', 'Error'].map((t) => h('th', t)))),
      h('tbody', ss.map((s) => h('tr', { dataset: { testid: 'service-row', service: s.name } },
        h('td', h('b', s.name)), h('td', h('span.status', { dataset: { status: s.state } }, s.state)),
        h('td', s.model || ''), h('td', s.scoring_uri ? h('code', s.scoring_uri) : ''),
        h('td.num', s.restarts ?? ''),
        h('td', s.error ? (typeof s.error === 'object' ? `${s.error.code || ''} ${s.error.message || ''}` : String(s.error)) : '')))))
      : h('p.muted', 'No services.'));
  };
  await Promise.all([loadModels().catch((e) => showError(models, e)), loadServices().catch((e) => showError(services, e))]);
  every(5000, () => loadServices(), ctx.onLeave);
}
