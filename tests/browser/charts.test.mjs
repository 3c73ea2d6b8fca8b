// Metric charts draw the points the API gives, capped near their width;
// compare overlays runs in one chart.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, SCRIPTS, launchBrowser, signedInPage, view, screenshot, until } from './daemon.mjs';

describe('charts', () => {
  let d, browser, page, small, big, other;

  before(async () => {
    d = await new Daemon().start();
    const src = d.source({ 'metrics.py': SCRIPTS['metrics.py'] });
    small = await d.submit(src, 'charts', 'metrics.py', 'loss', '50');
    big = await d.submit(src, 'charts', 'metrics.py', 'loss', '5000');
    other = await d.submit(src, 'charts', 'metrics.py', 'loss', '80');
    for (const r of [small, big, other]) await d.wait(r);
    browser = await launchBrowser();
    page = await signedInPage(browser, d);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  const chart = (p, name) => p.locator(`[data-testid=chart][data-metric="${name}"]`);
  const drawn = async (c) => {
    await until(async () => (await c.getAttribute('data-points')) !== null && (await c.locator('canvas').count()) > 0,
      'the chart drawn');
    return Number(await c.getAttribute('data-points'));
  };

  test('a run of 50 points of loss draws 50', async () => {
    await view(page, d, '#/run/' + small.id);
    const c = chart(page, 'loss');
    assert.equal(await drawn(c), 50);
    assert.equal(await c.getAttribute('data-series'), '1');
    assert.equal(await drawn(chart(page, 'acc')), 1);
    await screenshot(page, 'chart-50-points');
    assert.deepEqual(page.problems, []);
  });

  test('a run of 5,000 points draws at most the points asked for', async () => {
    await view(page, d, '#/run/' + big.id);
    const c = chart(page, 'loss');
    const n = await drawn(c);
    const asked = Number(await c.getAttribute('data-requested'));
    const width = await c.locator('.plot').evaluate((e) => e.clientWidth);
    assert.ok(asked >= 50 && asked <= 2000 && Math.abs(asked - width) <= 2, `asked ${asked} for ${width} px`);
    assert.ok(n > 0 && n <= asked, `${n} points drawn, ${asked} asked`);
    assert.equal(await c.getAttribute('data-count'), '5000');
    assert.equal(await c.getAttribute('data-downsampled'), '1');
    // The API itself keeps to a smaller cap too.
    const r = await d.apiJson(`api/runs/${big.id}/metrics/loss?points=100`);
    assert.equal(r.count, 5000);
    assert.ok(r.points.length <= 100 && r.points.length > 0, `${r.points.length} points for points=100`);
    assert.equal(r.downsampled, true);
    await screenshot(page, 'chart-5000-points');
    assert.deepEqual(page.problems, []);
  });

  test('compare overlays two runs in one chart', async () => {
    // Pick the two runs in the table, then Compare.
    await view(page, d, '#/runs');
    for (const r of [small, other]) {
      await page.locator(`[data-testid=run-row][data-run-id="${r.id}"] [data-testid=pick]`).check();
    }
    await page.getByTestId('compare-button').click();
    await page.waitForFunction(() => location.hash.startsWith('#/compare'));
    const hash = decodeURIComponent(new URL(page.url()).hash);
    assert.ok(hash.includes(small.id) && hash.includes(other.id), hash);
    await page.waitForFunction(() => !document.body.dataset.loading);

    const cols = page.getByTestId('compare-run');
    assert.equal(await cols.count(), 2);
    const c = chart(page, 'loss');
    assert.equal(await drawn(c), 50 + 80);
    assert.equal(await c.getAttribute('data-series'), '2');
    const legend = await c.locator('.u-legend .u-series').count();
    assert.equal(legend, 3, 'the x axis and two series in the legend');
    assert.match(await page.getByTestId('compare-table').textContent(), /loss 80/);
    await screenshot(page, 'compare');
    assert.deepEqual(page.problems, []);
  });
});
