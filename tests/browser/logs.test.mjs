// A run's page shows its log lines live, over SSE, while the run runs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, SCRIPTS, launchBrowser, signedInPage, view, screenshot, until } from './daemon.mjs';

describe('run page', () => {
  let d, browser, page;

  before(async () => {
    d = await new Daemon().start();
    browser = await launchBrowser();
    page = await signedInPage(browser, d);
  });
  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  test('shows log lines live while the run runs', async () => {
    // The script prints a line, then waits for the gate (at most 30 s)
    // before the next: the second line can only come live.
    const gate = path.join(d.dir, 'gate');
    const src = d.source({ 'slow.py': SCRIPTS['slow.py'] });
    const run = await d.submit(src, 'logs', 'slow.py', gate, '30', '0.6');
    await view(page, d, '#/run/' + run.id);
    assert.equal(await page.getByTestId('run-id').textContent(), run.id);

    const lines = page.getByTestId('log-line');
    const texts = () => lines.locator('.tx').allTextContents();
    await until(async () => (await texts()).includes('first line'), 'the first line', 30000);
    assert.ok(!(await texts()).includes('second line'));
    await until(async () => ['Running'].includes(await page.getByTestId('status').first().textContent()), 'Running');
    assert.ok(await page.getByTestId('cancel').isVisible(), 'a Cancel button while it runs');
    // stderr told apart from stdout.
    const err = lines.filter({ hasText: 'to stderr' });
    assert.equal(await err.getAttribute('data-stream'), 'stderr');
    await screenshot(page, 'run-live-first-line');

    const loads = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) loads.push(f.url()); });
    fs.writeFileSync(gate, '');
    await until(async () => (await texts()).includes('second line'), 'the second line, live', 15000);
    // A line with carriage returns shows its last segment only.
    await until(async () => (await texts()).includes('progress 100%'), 'the progress line');
    assert.ok(!(await texts()).some((t) => t.includes('progress 10%')));
    await screenshot(page, 'run-live-second-line');

    // The run ends: the stream ends, the page follows to Completed.
    await d.wait(run);
    await until(async () => (await texts()).includes('last line'), 'the last line');
    await until(async () => (await page.getByTestId('status').first().textContent()) === 'Completed', 'Completed', 15000);
    await until(async () => (await page.locator('[data-testid=log-state]').textContent()).includes('ended'), 'the log ended');
    assert.ok(await page.getByTestId('cancel').isHidden(), 'no Cancel button once ended');
    const ns = await lines.evaluateAll((ls) => ls.map((l) => Number(l.dataset.n)));
    assert.deepEqual(ns, [...ns].sort((a, b) => a - b), 'lines in order');
    assert.equal(new Set(ns).size, ns.length, 'no line twice');
    const stages = await page.getByTestId('stage').evaluateAll((ss) => ss.map((s) => s.dataset.stage));
    assert.equal(stages[0], 'Queued');
    assert.equal(stages.at(-1), 'Completed');
    assert.ok(stages.includes('Running'));
    assert.deepEqual(loads, [], 'no reload');
    await screenshot(page, 'run-completed');
    assert.deepEqual(page.problems, []);
  });

  test('an ended run shows its logs, stages and error', async () => {
    const src = d.source({ 'fail.py': 'import sys\nprint("about to fail", flush=True)\nsys.exit(3)\n' });
    const run = await d.submit(src, 'logs', 'fail.py');
    await d.wait(run).catch(() => {});
    await view(page, d, '#/run/' + run.id);
    await until(async () => (await page.getByTestId('log-line').locator('.tx').allTextContents()).includes('about to fail'),
      'the log line');
    assert.equal(await page.getByTestId('status').first().textContent(), 'Failed');
    const err = page.getByTestId('run-error');
    assert.equal(await err.count(), 1, 'the error is shown');
    const api = await d.apiJson(`api/runs/${run.id}`);
    if (api.error && api.error.code) assert.match(await err.textContent(), new RegExp(api.error.code));
    if (api.error && api.error.stage) assert.match(await err.textContent(), new RegExp(api.error.stage));
    await screenshot(page, 'run-failed');
    assert.deepEqual(page.problems, []);
  });

  test('tags, properties and outputs, with download links', async () => {
    const src = d.source({ 'outs.py': `import os, runyard
r = runyard.get_run()
r.tag("team", "vision")
r.add_properties({"git.commit": "abc123"})
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("weights\\n")
print("wrote", flush=True)
` });
    const run = await d.submit(src, 'logs', 'outs.py');
    await d.wait(run);
    await view(page, d, '#/run/' + run.id);
    assert.match(await page.getByTestId('tags').textContent(), /team\s*vision/);
    assert.match(await page.getByTestId('properties').textContent(), /git\.commit\s*abc123/);
    const link = page.locator('[data-testid=outputs] a', { hasText: 'outputs/model.txt' });
    await until(async () => (await link.count()) === 1, 'the output listed');
    const res = await page.request.get(new URL(await link.getAttribute('href'), d.url).href);
    assert.equal(res.status(), 200);
    assert.equal(await res.text(), 'weights\n');
    await screenshot(page, 'run-outputs');
    assert.deepEqual(page.problems, []);
  });

  test('the snapshot lists the files the run was given', async () => {
    const src = d.source({ 'main.py': 'print("hi")\n', 'lib/util.py': 'X = 1\n', '.amlignore': 'skip.txt\n', 'skip.txt': 'no\n' });
    const run = await d.submit(src, 'logs', 'main.py');
    await d.wait(run);
    await view(page, d, '#/run/' + run.id);
    const table = page.getByTestId('snapshot-files');
    await until(async () => (await table.count()) === 1, 'the snapshot listed');
    const text = await table.textContent();
    assert.match(text, /main\.py/);
    assert.match(text, /lib\/util\.py/);
    assert.doesNotMatch(text, /skip\.txt/);
    assert.deepEqual(page.problems, []);
  });
});
