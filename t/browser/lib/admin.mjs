// The admin API from the tests (to set the scene quickly), a page logged
// in to the dashboard, and what the dashboard's screen tests share.
import { before, after } from 'node:test';
import { startServers, launch, newPage } from './harness.mjs';

// a file's servers (voucherd behind nginx, Redis) and browser: started
// before its tests with the options opts (or what opts() gives), the
// scene set by setup(srv), stopped after them; env.skip is why there is
// no admin API when the voucherd built here has none
export function adminEnv(opts, setup) {
  const env = { srv: null, browser: null, skip: false };
  before(async () => {
    env.srv = await startServers({ voucherd: 1, ...(typeof opts === 'function' ? await opts() : opts) });
    if (env.srv.voucherdError) { env.skip = env.srv.voucherdError; return; }
    env.browser = await launch();
    if (setup) await setup(env.srv);
  });
  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.srv) await env.srv.stop();
  });
  // true, the test marked skipped with the reason, when there is no admin API
  env.skipped = (t) => {
    if (env.skip) t.skip(`no admin API: ${env.skip}`);
    return Boolean(env.skip);
  };
  return env;
}

// a call to voucherd's admin API through nginx; JSON in and out (a string
// body is sent as it is, with its type)
export async function admin(srv, token, method, path, body, type) {
  const headers = { Authorization: 'Bearer ' + token };
  if (body !== undefined) headers['Content-Type'] = type || 'application/json';
  const r = await fetch(`${srv.base}/v1/${path}`, {
    method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return json ?? text;
}

// wait until a job ended
export async function jobEnd(srv, token, id) {
  for (let i = 0; i < 600; i++) {
    const j = await admin(srv, token, 'GET', 'jobs/' + id);
    if (['done', 'failed', 'cancelled'].includes(j.state)) return j;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('job ' + id + ' did not end');
}

// a dashboard page with the token already given (as after a log-in)
export async function dashboard(browser, srv, token, hash, opts = {}) {
  const page = await newPage(browser, opts);
  await page.evaluateOnNewDocument((tk) => sessionStorage.setItem('voucher.admin_token', tk), token);
  await page.goto(`${srv.base}/dashboard/${hash || ''}`);
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}

export async function fill(page, sel, value) {
  await page.click(sel, { clickCount: 3 });
  await page.keyboard.press('Backspace');
  if (value) await page.type(sel, value);
}

export const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

// the text under sel once there is some (an error the server gave later)
export async function textOnce(page, sel) {
  await page.waitForFunction((s) => document.querySelector(s).textContent !== '', {}, sel);
  return text(page, sel);
}

export async function until(f, what, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('waited in vain for ' + what);
    await new Promise((r) => setTimeout(r, 150));
  }
}

// the non-white pixels of a chart's canvas under sel: it drew something
export const inked = (page, sel) => page.$eval(`${sel} canvas`, (c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) n++;
  return n;
});
