// The runs table lists the daemon's runs; filters narrow it and live in the URL.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, SCRIPTS, launchBrowser, signedInPage, view, screenshot, until } from './daemon.mjs';

describe('runs table', () => {
  let d, browser, page;
  const runs = [];

  before(async () => {
    d = await new Daemon().start();
    const src = d.source({ 'metrics.py': SCRIPTS['metrics.py'] });
    runs.push(await d.submit(src, 'alpha', 'metrics.py', 'loss', '10'));
    runs.push(await d.submit(src, 'alpha', 'metrics.py', 'loss', '20'));
    runs.push(await d.submit(src, 'beta', 'metrics.py', 'loss', '30'));
    for (const r of runs) await d.wait(r);
    browser = await launchBrowser();
    page = await signedInPage(browser, d);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  test('lists the runs and filtering by experiment narrows it, in the URL', async () => {
    await view(page, d, '#/runs');
    const rows = page.getByTestId('run-row');
    await until(async () => (await rows.count()) === 3, 'three rows');
    // Newest first, with id, status, arguments and the metric columns.
    const ids = await rows.evaluateAll((rs) => rs.map((r) => r.dataset.runId));
    assert.deepEqual(ids, runs.map((r) => r.id).reverse());
    const first = rows.first();
    assert.equal(await first.getByTestId('status').textContent(), 'Completed');
    assert.match(await first.textContent(), /loss 30/);
    assert.match(await first.textContent(), new RegExp('#' + runs[2].seq));
    const heads = await page.locator('[data-testid=runs-table] thead th').allTextContents();
    assert.ok(heads.includes('acc') && heads.includes('loss'), `metric columns in ${heads}`);

    await page.getByTestId('filter-experiment').fill('beta');
    await page.getByTestId('filter-experiment').press('Enter');
    await until(async () => (await rows.count()) === 1, 'one row');
    assert.equal(await rows.first().getAttribute('data-run-id'), runs[2].id);
    const url = new URL(page.url());
    assert.match(url.hash, /^#\/runs\?(.*&)?experiment=beta(&|$)/);
    await screenshot(page, 'runs-filtered');

    // The URL alone gives the same view.
    const fresh = await page.context().newPage();
    await view(fresh, d, '#/runs?experiment=alpha');
    await until(async () => (await fresh.getByTestId('run-row').count()) === 2, 'two alpha rows');
    assert.equal(await fresh.getByTestId('filter-experiment').inputValue(), 'alpha');
    await fresh.close();
    assert.deepEqual(page.problems, []);
  });

  test('a metric header sorts the table by it, largest first, then smallest', async () => {
    await view(page, d, '#/runs');
    const rows = page.getByTestId('run-row');
    await until(async () => (await rows.count()) === 3, 'three rows');
    const order = () => rows.evaluateAll((rs) => rs.map((r) => r.dataset.runId));
    // The last loss falls as a run logs more: the oldest run's is the largest.
    await page.locator('[data-testid=sort][data-key="metric:loss"]').click();
    const ids = runs.map((r) => r.id);
    await until(async () => JSON.stringify(await order()) === JSON.stringify(ids), 'sorted by loss');
    assert.match(new URL(page.url()).hash, /sort=metric%3Aloss/);
    await page.locator('[data-testid=sort][data-key="metric:loss"]').click();
    await until(async () => JSON.stringify(await order()) === JSON.stringify([...ids].reverse()),
      'sorted by loss, smallest first');
    assert.match(new URL(page.url()).hash, /order=asc/);
    await screenshot(page, 'runs-sorted');
    assert.deepEqual(page.problems, []);
  });

  test('pages with the keyset, newest first', async () => {
    await view(page, d, '#/runs?limit=2');
    const rows = page.getByTestId('run-row');
    await until(async () => (await rows.count()) === 2, 'a page of two');
    assert.equal(await rows.first().getAttribute('data-run-id'), runs[2].id);
    await page.getByTestId('next-page').click();
    await until(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-run-id')) === runs[0].id,
      'the older page');
    assert.match(new URL(page.url()).hash, new RegExp(`before=${runs[1].seq}`));
    assert.equal(await page.getByTestId('next-page').count(), 0);
    await screenshot(page, 'runs-page-2');
    assert.deepEqual(page.problems, []);
  });

  test('looks right narrow and dark', async () => {
    const ctx = await browser.newContext({ viewport: { width: 420, height: 800 }, colorScheme: 'dark' });
    const p = await ctx.newPage();
    await p.goto(d.url + '?token=' + d.token);
    await view(p, d, '#/runs');
    await until(async () => (await p.getByTestId('run-row').count()) === 3, 'three rows');
    // Nothing wider than the window but the table's own scroller.
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
    const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(255, 255, 255)');
    await screenshot(p, 'runs-narrow-dark');
    await ctx.close();
  });

  test('the models and services page loads', async () => {
    await view(page, d, '#/models');
    const models = await d.apiJson('api/models');
    const services = await d.apiJson('api/services');
    assert.equal(await page.getByTestId('model-row').count(), models.models.length);
    assert.equal(await page.getByTestId('service-row').count(), services.services.length);
    assert.match(await page.locator('#view').textContent(), /Models and services/);
    await screenshot(page, 'models');
    assert.deepEqual(page.problems, []);
  });
});
