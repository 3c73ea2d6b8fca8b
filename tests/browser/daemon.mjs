// Helpers of the browser tests: a real private runyardd with its web view
// on a free loopback port, the CLI to submit runs to it, and headless
// Debian chromium driven by playwright-core.
//
//   RUNYARD_BUILD        the build dir (default build): $RUNYARD_BUILD/daemon/runyardd,
//                        $RUNYARD_BUILD/cli/runyard
//   RUNYARD_BROWSER_OUT  where screenshots go (default tests/browser/output)

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = path.resolve(ROOT, process.env.RUNYARD_BUILD || 'build');
export const DAEMON = path.join(BUILD, 'daemon', 'runyardd');
export const CLI = path.join(BUILD, 'cli', 'runyard');
export const OUT = path.resolve(process.env.RUNYARD_BROWSER_OUT || path.join(ROOT, 'tests', 'browser', 'output'));
export const CHROMIUM = '/usr/bin/chromium';
export const PYTHON = '/usr/bin/python3';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn until it returns a truthy value (returned) or ms pass (throws).
export async function until(fn, what, ms = 20000, every = 100) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}` + (last ? `: ${last.message}` : ''));
    await sleep(every);
  }
}

// A private daemon: start() it, submit runs, stop() it.
export class Daemon {
  constructor() {
    // The socket's path must stay short (sun_path): a dir directly in /tmp.
    this.dir = fs.mkdtempSync(path.join('/tmp', 'ry-'));
    this.state = path.join(this.dir, 'state');
    this.socket = path.join(this.dir, 'sock');
    this.log = path.join(this.dir, 'daemon.log');
    this.proc = null;
    this.url = null;
    this.token = null;
    this.srcs = 0;
  }

  async start() {
    for (const f of [DAEMON, CLI]) {
      if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (ninja -C ${path.relative(ROOT, BUILD) || '.'})`);
    }
    const out = fs.openSync(this.log, 'a');
    this.proc = spawn(DAEMON, ['--state-dir', this.state, '--socket', this.socket, '--http', '127.0.0.1:0'], {
      cwd: ROOT,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        RUNYARD_WEB_DIR: path.join(ROOT, 'web'),
        RUNYARD_VENDOR_DIR: path.join(ROOT, 'node_modules', 'uplot', 'dist'),
      },
    });
    fs.closeSync(out);
    let exited = null;
    this.proc.on('exit', (code, sig) => { exited = sig || code; });
    const urlFile = path.join(this.state, 'web.url');
    const tokFile = path.join(this.state, 'web.token');
    try {
      await until(() => {
        if (exited !== null) throw new Error(`runyardd exited (${exited})`);
        return fs.existsSync(urlFile) && fs.existsSync(tokFile) && fs.existsSync(this.socket) &&
          fs.readFileSync(urlFile, 'utf8').trim() && fs.readFileSync(tokFile, 'utf8').trim();
      }, 'the daemon to write web.url and web.token', 15000, 50);
    } catch (e) {
      throw new Error(`${e.message}\n--- ${this.log}:\n${this.logTail()}`);
    }
    this.url = fs.readFileSync(urlFile, 'utf8').trim();
    if (!this.url.endsWith('/')) this.url += '/';
    this.token = fs.readFileSync(tokFile, 'utf8').trim();
    this.tokenMode = fs.statSync(tokFile).mode & 0o777;
    return this;
  }

  logTail(n = 40) {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop() {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10000);
      await gone;
      clearTimeout(t);
    }
    this.proc = null;
    if (!process.env.RUNYARD_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // The CLI against this daemon; with json, its stdout parsed.
  async cli(args, { json = false, timeout = 60000 } = {}) {
    try {
      const { stdout } = await execFileP(CLI, args, {
        env: { ...process.env, RUNYARD_SOCKET: this.socket },
        timeout,
        maxBuffer: 16 << 20,
      });
      return json ? JSON.parse(stdout) : stdout;
    } catch (e) {
      throw new Error(`runyard ${args.join(' ')}: ${e.message}\n${e.stderr || ''}\n--- daemon log:\n${this.logTail(15)}`);
    }
  }

  // A source directory holding files {name: text}.
  source(files) {
    const dir = path.join(this.dir, `src${++this.srcs}`);
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    }
    return dir;
  }

  // Submit PROGRAM ARGS of source (a dir) as a run; the run object.
  submit(source, experiment, program, ...args) {
    return this.cli(['submit', '--source', source, '--python', PYTHON, '--experiment', experiment,
      '--json', '--', program, ...args], { json: true });
  }

  wait(run) {
    return this.cli(['wait', typeof run === 'string' ? run : run.id], { timeout: 90000 });
  }

  // A JSON API request with the bearer token (or other headers).
  async api(p, { headers, method = 'GET' } = {}) {
    const res = await fetch(new URL(p, this.url), {
      method,
      headers: headers || { Authorization: `Bearer ${this.token}` },
    });
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body, text, headers: res.headers };
  }

  async apiJson(p) {
    const r = await this.api(p);
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.text}`);
    return r.body;
  }
}

export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
}

// A page signed in to daemon d the way a person is: the token link, whose
// 303 sets the cookie. Console errors and failed requests are collected in
// page.problems.
export async function signedInPage(browser, d, { width = 1280, height = 900, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console: ${m.text()}`); });
  const res = await page.goto(d.url + '?token=' + encodeURIComponent(d.token));
  if (!res || res.status() !== 200) throw new Error(`signing in: ${res && res.status()}`);
  return page;
}

// Go to a hash route of the page and wait for the view to have loaded.
export async function view(page, d, hash) {
  await page.goto(d.url + hash);
  await page.waitForFunction(() => !document.body.dataset.loading && document.querySelector('#view .page'));
}

export async function screenshot(page, name) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Python scripts the tests run.
export const SCRIPTS = {
  // Logs N points of a metric (default loss) and a final acc.
  'metrics.py': `import sys
import runyard
run = runyard.get_run()
name = sys.argv[1] if len(sys.argv) > 1 else "loss"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
for i in range(n):
    run.log(name, 1.0 / (1 + i) + (i % 7) * 0.001)
run.log("acc", 0.5 + n / 100000.0)
print("logged", n, "points of", name, flush=True)
`,
  // Prints a line, waits, prints another (a file may end the wait early).
  'slow.py': `import os, sys, time
print("first line", flush=True)
print("to stderr", file=sys.stderr, flush=True)
gate = sys.argv[1] if len(sys.argv) > 1 else ""
end = time.time() + float(sys.argv[2] if len(sys.argv) > 2 else 1.5)
while time.time() < end and not (gate and os.path.exists(gate)):
    time.sleep(0.05)
print("second line", flush=True)
print("progress 10%\\rprogress 50%\\rprogress 100%", flush=True)
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)
print("last line", flush=True)
`,
  // A sweep's trial: logs acc from --lr.
  'train.py': `import argparse
import runyard
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
a = p.parse_args()
run = runyard.get_run()
for i in range(5):
    run.log("loss", 1.0 / (1 + i) / a.lr)
run.log("acc", 1.0 - abs(a.lr - 0.2))
print("lr", a.lr, flush=True)
`,
};
