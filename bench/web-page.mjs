// The browser half of bench/web.py: headless Debian chromium through
// playwright-core, against a daemon bench/web.py started and filled.
//
//   node bench/web-page.mjs URL TOKEN LIVE_RUN_ID REPS
//
// Prints one JSON object: the runs page's first contentful paint and when
// its first table row was in the document (ms from the navigation's start), each REPS times in a fresh page; the same
// paint of a one-line page (the browser's floor, the baseline); and, on
// the run page of LIVE_RUN_ID (a run printing "tick <epoch seconds>"
// lines), how long after it printed each line the page showed it.

import { chromium } from 'playwright-core';

const [url, token, liveRun, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 10);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
  // playwright gives the browser a fresh --user-data-dir of its own.
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
// The link runyard ui prints: the daemon sets the cookie and sends us on.
{
  const p = await ctx.newPage();
  await p.goto(`${url}/?token=${token}`);
  await p.close();
}

const fcp = () => new Promise((resolve) => {
  const seen = performance.getEntriesByName('first-contentful-paint');
  if (seen.length) return resolve(seen[0].startTime);
  new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime))
    .observe({ type: 'paint', buffered: true });
});

// When the first run row is in the document, in the page's own clock (from
// the start of the navigation, as paint entries are).
await ctx.addInitScript(() => {
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-testid="run-row"]')) {
      window.firstRow = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
});

async function paintOf(target, rowSelector) {
  const p = await ctx.newPage();
  await p.goto(target, { waitUntil: 'commit' });
  let row = null;
  if (rowSelector) {
    await p.waitForSelector(rowSelector, { timeout: 30000 });
    row = await p.evaluate(() => window.firstRow);
  }
  const paint = await p.evaluate(fcp);
  await p.close();
  return { paint, row };
}

const floor = [];
const runs = [];
for (let i = 0; i < reps; i++) {
  floor.push((await paintOf('data:text/html,<p>runyard</p>')).paint);
  runs.push(await paintOf(`${url}/#/runs`, '[data-testid="run-row"]'));
}

// Live logs: every line the run prints carries its time; the page's
// delay is when it appeared here minus then.
const live = [];
if (liveRun) {
  const p = await ctx.newPage();
  await p.exposeFunction('seen', (text) => {
    const m = /tick (\d+\.\d+)/.exec(text);
    if (m) live.push(Date.now() - Number(m[1]) * 1000);
  });
  await p.goto(`${url}/#/run/${encodeURIComponent(liveRun)}`);
  await p.waitForSelector('[data-testid="log-line"]', { timeout: 30000 });
  await p.evaluate(() => {
    // Lines shown with the page are not timed: only those that come live.
    const known = new Set(document.querySelectorAll('[data-testid="log-line"]'));
    const scan = () => {
      for (const el of document.querySelectorAll('[data-testid="log-line"]')) {
        if (!known.has(el)) {
          known.add(el);
          window.seen(el.textContent);
        }
      }
    };
    new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  });
  const deadline = Date.now() + 15000;
  while (live.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await p.close();
}

await browser.close();
console.log(JSON.stringify({
  floor,
  paint: runs.map((r) => r.paint),
  row: runs.map((r) => r.row),
  live,
}));
