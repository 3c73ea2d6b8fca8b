// Charts with uPlot (the global the daemon serves at /vendor/uPlot.iife.min.js).
// Each chart is a div[data-testid=chart] whose data-points is the number of
// points drawn (all series together) and data-series the number of series.

import { h, fmtNum } from './util.js';

export const PALETTE = ['#2f7ed8', '#e4572e', '#29a35a', '#a05cd6', '#f0a202',
  '#17becf', '#d6336c', '#7f7f7f', '#8c564b', '#bcbd22'];

const HEIGHT = 220;
// Steps are whole numbers: ticks at 1, 2, 5, 10, 20, 50, ...
const STEP_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((e) => m * e)).sort((a, b) => a - b);

function theme() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return { fg: v('--muted') || '#666', grid: v('--grid') || '#ddd' };
}

function axes(xLabel, yLabel, xValues) {
  const t = theme();
  const ax = (label) => ({ label, stroke: t.fg, grid: { stroke: t.grid, width: 1 },
    ticks: { stroke: t.grid, width: 1 }, font: '11px system-ui, sans-serif',
    labelFont: '11px system-ui, sans-serif' });
  const x = ax(xLabel);
  if (xValues) x.values = xValues;
  if (xLabel === 'step') x.incrs = STEP_INCRS;
  const y = ax(yLabel);
  y.values = (u, vals) => vals.map(fmtNum);
  y.size = 56;
  return [x, y];
}

// How many points a chart in el should ask for: about its width in pixels.
export function pointsFor(el) {
  return Math.max(50, Math.min(2000, Math.round(el.clientWidth || 600)));
}

// The chart box: a title and where uPlot goes. Attach it before mounting.
export function chartBox(title, extra) {
  return h('figure.chart', { dataset: { testid: 'chart', metric: title, ...extra } },
    h('figcaption', title), h('div.plot'));
}

function mount(box, opts, data, onLeave) {
  const plot = box.querySelector('.plot');
  plot.textContent = '';
  const width = () => Math.max(200, plot.clientWidth || box.clientWidth || 600);
  const u = new uPlot({ width: width(), height: HEIGHT, ...opts }, data, plot);
  const ro = new ResizeObserver(() => {
    const w = width();
    if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: HEIGHT });
  });
  ro.observe(plot);
  onLeave && onLeave(() => { ro.disconnect(); u.destroy(); });
  return u;
}

function sortByX(pts) {
  for (let i = 1; i < pts.length; i++) {
    if (pts[i][0] < pts[i - 1][0]) return [...pts].sort((a, b) => a[0] - b[0]);
  }
  return pts;
}

// Line chart of one or more series: [{label, points: [[step, value], ...]}].
// Returns {update(series)} to redraw it with new points.
export function lineChart(box, series, onLeave, xLabel = 'step') {
  let u = null, shape = '';
  const draw = (ser) => {
    ser = ser.map((s) => ({ ...s, points: sortByX((s.points || []).filter((p) => p[1] != null)) }));
    const total = ser.reduce((n, s) => n + s.points.length, 0);
    box.dataset.points = String(total);
    box.dataset.series = String(ser.length);
    let data;
    if (ser.length === 1) {
      data = [ser[0].points.map((p) => p[0]), ser[0].points.map((p) => p[1])];
    } else {
      data = uPlot.join(ser.map((s) => [s.points.map((p) => p[0]), s.points.map((p) => p[1])]));
    }
    const key = ser.map((s) => s.label).join('\n');
    if (u && key === shape) {
      u.setData(data);
      return;
    }
    if (u) u.destroy();
    shape = key;
    const xs = data[0];
    const flat = xs.length > 0 && xs[0] === xs[xs.length - 1];
    u = mount(box, {
      // One step only: a range around it (uPlot would give 0..100).
      scales: { x: { time: false, auto: !flat, range: flat ? [xs[0] - 1, xs[0] + 1] : undefined } },
      axes: axes(xLabel, null),
      legend: { show: ser.length > 1 },
      cursor: { points: { size: 6 } },
      series: [{ label: xLabel }, ...ser.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[(s.color ?? i) % PALETTE.length],
        width: 1.5,
        spanGaps: true,
        points: s.points.length < 2 ? { show: true, size: 7 } : { size: 5 },
        value: (uu, v) => fmtNum(v),
      }))],
    }, data, onLeave);
  };
  draw(series);
  return { update: draw };
}

// Scatter of points [{x, y, label}] (x numeric, or categories: strings).
export function scatterChart(box, pts, xLabel, yLabel, onLeave) {
  const cats = pts.some((p) => typeof p.x !== 'number')
    ? [...new Set(pts.map((p) => String(p.x)))].sort() : null;
  const xy = pts.map((p) => [cats ? cats.indexOf(String(p.x)) : p.x, p.y])
    .filter((p) => p[1] != null && isFinite(p[0]));
  xy.sort((a, b) => a[0] - b[0]);
  box.dataset.points = String(xy.length);
  box.dataset.series = '1';
  const xValues = cats ? (u, vals) => vals.map((v) => (Number.isInteger(v) ? cats[v] ?? '' : '')) : null;
  const data = [xy.map((p) => p[0]), xy.map((p) => p[1])];
  return mount(box, {
    mode: 1,
    scales: { x: { time: false, range: (u, lo, hi) => (lo === hi || cats
      ? [lo - Math.max(0.5, Math.abs(lo) * 0.1), hi + Math.max(0.5, Math.abs(hi) * 0.1)]
      : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05]) } },
    axes: axes(xLabel, yLabel, xValues),
    cursor: { points: { size: 10 } },
    series: [{ label: xLabel, value: (u, v) => (cats && v != null ? cats[v] : fmtNum(v)) }, {
      label: yLabel,
      stroke: PALETTE[0],
      fill: PALETTE[0] + '55',
      paths: () => null,
      points: { show: true, size: 9, width: 1.5, fill: PALETTE[0] + '99' },
      value: (u, v) => fmtNum(v),
    }],
  }, data, onLeave);
}
