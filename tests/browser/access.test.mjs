// Access: the token is needed for everything, and a POST needs it in
// X-Runyard-Token from the daemon's own origin, which another site's page
// cannot send.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, SCRIPTS, launchBrowser, signedInPage, view, screenshot, until, sleep } from './daemon.mjs';

// A raw request, so that Host and the other headers are exactly ours.
function raw(url, { method = 'GET', headers = {} } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(body); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('access', () => {
  let d, browser, run, gate, foreign, foreignUrl;

  before(async () => {
    d = await new Daemon().start();
    gate = path.join(d.dir, 'gate');
    const src = d.source({ 'slow.py': SCRIPTS['slow.py'] });
    // Runs until the gate opens (or 60 s): there while the tests try to cancel it.
    run = await d.submit(src, 'access', 'slow.py', gate, '60');
    await until(async () => (await d.apiJson(`api/runs/${run.id}`)).status === 'Running', 'the run Running');
    browser = await launchBrowser();
    // Another origin: a page on another loopback port.
    foreign = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>elsewhere</title><h1>another site</h1>
<form id=f method=post action="${d.url}api/runs/${run.id}/cancel"></form><p id=out>…</p>`);
    });
    await new Promise((r) => foreign.listen(0, '127.0.0.1', r));
    foreignUrl = `http://127.0.0.1:${foreign.address().port}/`;
  });
  after(async () => {
    fs.writeFileSync(gate, '');
    await browser?.close();
    foreign?.close();
    await d?.stop();
  });

  test('a request without the token gets 401', async () => {
    for (const p of ['api/runs', `api/runs/${run.id}`, `api/runs/${run.id}/logs`, 'api/session', 'api/models']) {
      const r = await fetch(new URL(p, d.url));
      assert.equal(r.status, 401, p);
      const body = await r.json();
      assert.equal(body.error.code, 'Unauthorized', p);
      assert.equal(typeof body.error.message, 'string');
    }
    const wrong = await fetch(new URL('api/runs', d.url), { headers: { Authorization: 'Bearer ' + 'x'.repeat(d.token.length) } });
    assert.equal(wrong.status, 401);
    const badCookie = await fetch(new URL('api/runs', d.url), { headers: { Cookie: 'runyard_token=nope' } });
    assert.equal(badCookie.status, 401);
    const page = await fetch(d.url);
    assert.equal(page.status, 401, 'the page itself');
    const wrongLink = await fetch(d.url + '?token=nope', { redirect: 'manual' });
    assert.equal(wrongLink.status, 401, 'a wrong token link');
    // With it: the bearer header, or the cookie the token link sets.
    assert.equal((await d.api('api/runs')).status, 200);
    const link = await fetch(d.url + '?token=' + d.token, { redirect: 'manual' });
    assert.equal(link.status, 303);
    assert.equal(new URL(link.headers.get('location'), d.url).href, d.url);
    const setCookie = link.headers.get('set-cookie');
    assert.match(setCookie, /runyard_token=/);
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    assert.equal(d.tokenMode, 0o600, 'web.token is 0600');

    // A browser without the cookie sees no data.
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const res = await p.goto(d.url + '#/runs');
    assert.equal(res.status(), 401);
    assert.equal(await p.getByTestId('run-row').count(), 0);
    await screenshot(p, 'access-no-token');
    await ctx.close();
  });

  test('a Host that is not the listening address is refused', async () => {
    const r = await raw(d.url + 'api/runs', { headers: { Host: 'attacker.example', Authorization: `Bearer ${d.token}` } });
    assert.ok([403, 421].includes(r.status), `status ${r.status}`);
    const ok = await raw(d.url + 'api/runs', { headers: { Authorization: `Bearer ${d.token}` } });
    assert.equal(ok.status, 200);
  });

  test('a cross-origin POST is refused', async () => {
    const cookie = `runyard_token=${d.token}`;
    const cancel = d.url + `api/runs/${run.id}/cancel`;
    // The cookie, but not X-Runyard-Token: what another site's form sends.
    let r = await raw(cancel, { method: 'POST', headers: { Cookie: cookie } });
    assert.equal(r.status, 403, r.body);
    r = await raw(cancel, { method: 'POST', headers: { Cookie: cookie, Origin: foreignUrl.replace(/\/$/, ''),
      'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 403, r.body);
    // The header, from a foreign Origin.
    r = await raw(cancel, { method: 'POST', headers: { Cookie: cookie, 'X-Runyard-Token': d.token, Origin: 'http://evil.example' } });
    assert.equal(r.status, 403, r.body);
    // A wrong header.
    r = await raw(cancel, { method: 'POST', headers: { Cookie: cookie, 'X-Runyard-Token': 'nope' } });
    assert.equal(r.status, 403, r.body);
    assert.equal((await d.apiJson(`api/runs/${run.id}`)).status, 'Running');

    // A real page of another origin, in a browser that is signed in.
    const page = await signedInPage(browser, d);
    const other = await page.context().newPage();
    await other.goto(foreignUrl);
    const fetched = await other.evaluate(async (url) => {
      try {
        await fetch(url, { method: 'POST', credentials: 'include', mode: 'no-cors' });
        return 'sent';
      } catch (e) {
        return 'blocked: ' + e.message;
      }
    }, cancel);
    const nav = other.waitForNavigation();
    await other.evaluate(() => document.getElementById('f').submit());
    const res = await nav;
    assert.ok([401, 403].includes(res.status()), `the form's POST: ${res.status()} (${fetched})`);
    await screenshot(other, 'access-cross-origin-form');
    await sleep(300);
    assert.equal((await d.apiJson(`api/runs/${run.id}`)).status, 'Running', 'still running');

    // The page's own Cancel button works (it reads the token from /api/session).
    await view(page, d, '#/run/' + run.id);
    await page.getByTestId('cancel').click();
    await until(async () => ['CancelRequested', 'Canceled'].includes(await page.getByTestId('status').first().textContent()),
      'the run canceling', 15000);
    await until(async () => (await d.apiJson(`api/runs/${run.id}`)).status === 'Canceled', 'Canceled', 20000);
    await until(async () => (await page.getByTestId('status').first().textContent()) === 'Canceled', 'the page shows Canceled');
    await screenshot(page, 'access-canceled');
    assert.deepEqual(page.problems, []);
  });
});
