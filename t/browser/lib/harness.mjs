// The browser tests' harness: Redis and nginx through servers.pl (the VT
// harness, free 127.0.0.1 ports, stopped at the end of input), Debian's
// chromium through puppeteer-core, screenshots under build/screenshots/.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../../..');
export const shots = path.join(root, 'build', 'screenshots');

export async function startServers(opts = {}) {
  const child = spawn('perl', [path.join(here, 'servers.pl'), JSON.stringify(opts)], {
    cwd: root, stdio: ['pipe', 'pipe', 'inherit'], env: process.env,
  });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  const queued = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l); else queued.push(l);
  });
  const next = () => new Promise((resolve, reject) => {
    if (queued.length) { resolve(queued.shift()); return; }
    const timer = setTimeout(() => reject(new Error('servers.pl: no answer in 60 s')), 60000);
    waiting.push((l) => { clearTimeout(timer); resolve(l); });
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const first = JSON.parse(await Promise.race([next(),
    exited.then((c) => { throw new Error(`servers.pl exited (${c}) before starting`); })]));

  let id = 0;
  const ask = async (q) => {
    q.id = ++id;
    child.stdin.write(JSON.stringify(q) + '\n');
    const a = JSON.parse(await next());
    if (a.id !== q.id) throw new Error(`servers.pl: answer ${a.id} to ${q.id}`);
    return a;
  };

  return {
    nginx: first.nginx,
    redisPort: first.redis,
    adminPort: first.admin,
    voucherdError: first.voucherd_error,
    base: `http://127.0.0.1:${first.nginx}`,
    // a Redis command; an error reply throws
    async redis(...args) {
      const a = await ask({ redis: args.map(String) });
      if (a.error) throw new Error(`redis ${args[0]}: ${a.error}`);
      return a.reply;
    },
    async errorLog() { return (await ask({ error_log: 1 })).reply; },
    async redisStop() { return (await ask({ redis_stop: 1 })).reply; },
    async redisStart() { return (await ask({ redis_start: 1 })).reply; },
    // servers.pl stops nginx and Redis when its input ends
    async stop() {
      child.stdin.end();
      const t = setTimeout(() => child.kill('SIGTERM'), 30000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function launch(extraArgs = []) {
  const profile = mkdtempSync(path.join(tmpdir(), 'vb-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-gpu', '--lang=th-TH', ...extraArgs],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return browser;
}

// a page that fails the test on a console error or an uncaught exception
export async function newPage(browser, { width = 390, height = 844, lang } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height, deviceScaleFactor: 1 });
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    // a refusal's 4xx, a 502 or 503, is logged by the browser itself
    if (m.type() === 'error' && !page.allowConsoleErrors
        && !/^Failed to load resource: the server responded with a status of (4\d\d|50[23])/.test(m.text())) {
      page.problems.push('console: ' + m.text());
    }
  });
  if (lang) {
    await page.evaluateOnNewDocument((l) => { localStorage.setItem('voucher.lang', l); }, lang);
  }
  return page;
}

export async function shot(page, name, opts = {}) {
  mkdirSync(shots, { recursive: true });
  const file = path.join(shots, name + '.png');
  await page.screenshot({ path: file, fullPage: opts.fullPage ?? true });
  return file;
}

// the Redis hash reply [k1, v1, k2, v2...] as an object
export function pairs(list) {
  const o = {};
  for (let i = 0; list && i < list.length; i += 2) o[list[i]] = list[i + 1];
  return o;
}

// the audit trail's entries as objects with their id
export async function trail(srv, ns = 'v') {
  const xs = await srv.redis('XRANGE', `{${ns}}:log`, '-', '+');
  return xs.map(([id, f]) => ({ id, ...pairs(f) }));
}
