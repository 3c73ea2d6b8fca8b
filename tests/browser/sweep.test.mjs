// A sweep's page shows its children with their parameters and metric, a
// scatter of a parameter against the metric, and the best child.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, SCRIPTS, PYTHON, launchBrowser, signedInPage, view, screenshot, until } from './daemon.mjs';

describe('sweep page', () => {
  let d, browser, page, sweep;

  before(async () => {
    d = await new Daemon().start();
    const src = d.source({ 'train.py': SCRIPTS['train.py'] });
    sweep = await d.cli(['sweep', 'submit', '--source', src, '--python', PYTHON, '--experiment', 'sweepy',
      '--metric', 'acc', '--goal', 'maximize', '--sampling', 'grid', '--param', '--lr=choice(0.1, 0.2, 0.4)',
      '--max-total', '3', '--max-concurrent', '2', '--json', '--', 'train.py'], { json: true });
    await d.wait(sweep);
    browser = await launchBrowser();
    page = await signedInPage(browser, d);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  test('shows its children, their parameters, the scatter and the best', async () => {
    const kids = (await d.apiJson(`api/runs/${sweep.id}/children`)).runs;
    assert.equal(kids.length, 3);
    await view(page, d, '#/sweep/' + sweep.id);
    assert.equal(await page.getByTestId('sweep-id').textContent(), sweep.id);
    const rows = page.getByTestId('sweep-child');
    await until(async () => (await rows.count()) === 3, 'three children');
    const shown = await rows.evaluateAll((rs) => rs.map((r) => r.dataset.runId).sort());
    assert.deepEqual(shown, kids.map((k) => k.id).sort());
    const text = await page.getByTestId('sweep-children').textContent();
    for (const lr of ['0.1', '0.2', '0.4']) assert.ok(text.includes(lr), `--lr ${lr} in the table`);
    const heads = await page.locator('[data-testid=sweep-children] thead th').allTextContents();
    assert.ok(heads.includes('--lr') && heads.includes('acc'), `${heads}`);

    // The best is --lr 0.2 (acc 1.0), marked and named.
    const best = kids.find((k) => k.params && k.params['--lr'] === 0.2);
    assert.ok(best, 'a child with --lr 0.2');
    await until(async () => (await page.getByTestId('sweep-best').getAttribute('data-run-id')) === best.id, 'the best run');
    assert.match(await page.locator(`[data-testid=sweep-child][data-run-id="${best.id}"]`).getAttribute('class'), /best/);

    const scatter = page.getByTestId('scatter');
    await until(async () => (await scatter.locator('canvas').count()) > 0, 'the scatter drawn');
    assert.equal(await scatter.getAttribute('data-points'), '3');
    await screenshot(page, 'sweep');

    // Its children compared: parameters side by side, one series each.
    await page.getByRole('link', { name: 'Compare 3 runs' }).click();
    await page.waitForFunction(() => location.hash.startsWith('#/compare') && !document.body.dataset.loading);
    assert.equal(await page.getByTestId('compare-run').count(), 3);
    const lrRow = page.locator('[data-testid=compare-table] tbody tr', { has: page.locator('th', { hasText: '--lr' }) });
    assert.equal(await lrRow.count(), 1, 'a --lr row');
    const loss = page.locator('[data-testid=chart][data-metric=loss]');
    await until(async () => (await loss.getAttribute('data-series')) === '3', 'three series of loss');
    await screenshot(page, 'sweep-compare');

    // A child's page names its sweep and parameters.
    await view(page, d, '#/run/' + best.id);
    assert.match(await page.locator('.facts').first().textContent(), /--lr 0\.2/);
    assert.equal(await page.locator(`.facts a[href="#/sweep/${sweep.id}"]`).count(), 1);

    // The sweep is also in the runs table, its children under it.
    await view(page, d, '#/runs?kind=sweep');
    await until(async () => (await page.getByTestId('run-row').count()) === 1, 'one sweep row');
    assert.equal(await page.getByTestId('run-row').getAttribute('data-run-id'), sweep.id);
    await page.getByTestId('run-row').locator('td.id a').click();
    await page.waitForFunction(() => location.hash.startsWith('#/sweep/'));
    await until(async () => (await page.getByTestId('sweep-child').count()) === 3, 'the sweep page again');
    assert.deepEqual(page.problems, []);
  });
});
