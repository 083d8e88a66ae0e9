// Helpers of the dashboard's screen tests: a page logged in (the token in
// this tab's sessionStorage, as the log-in leaves it) and a call of the
// admin API through nginx, as the dashboard makes it.
import assert from 'node:assert/strict';
import { newPage } from './harness.mjs';

export async function openDashboard(browser, srv, hash, { lang, token, width = 1280, height = 900 } = {}) {
  const page = await newPage(browser, { lang, width, height });
  await page.evaluateOnNewDocument((tk) => sessionStorage.setItem('voucher.admin_token', tk), token);
  await page.goto(`${srv.base}/dashboard/${hash}`);
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}

export async function admin(srv, token, method, path, body) {
  const r = await fetch(`${srv.base}/v1/${path}`, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}
