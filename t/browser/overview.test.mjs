// The overview against known traffic: redemptions made through nginx's
// edge API, deliveries in the campaign's delivery log, one redemption of
// three days ago in the audit trail; the figures of today and of the last
// 30 days, the per-campaign table, and charts that drew, in English and
// Thai, on a desktop and a phone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from './lib/harness.mjs';
import { dashboard, admin, inked, adminEnv } from './lib/admin.mjs';

const TOKEN = 'overview-5c1e9a7f3b2d8e40';
const env = adminEnv({ token: TOKEN });

async function redeem(code, amount, key) {
  const r = await fetch(`${env.srv.base}/vouchers/redeem`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify({ code, order: { amount, currency: 'THB' } }),
  });
  const j = await r.json();
  assert.equal(r.status, 200, JSON.stringify(j));
  return j;
}

const tiles = (page) => page.$$eval('.tile', (ts) => Object.fromEntries(ts.map((x) => [x.id, x.querySelector('.tile-value').textContent])));

test('the overview: today and 30 days from known traffic, and charts that drew', async (t) => {
  if (env.skipped(t)) return;
  const fc = (...a) => env.srv.redis('FCALL', ...a);
  await admin(env.srv, TOKEN, 'POST', 'campaigns', { id: 'songkran', name: 'Songkran 10%', kind: 'percent', value: 1000,
    currency: 'THB', tz_offset: '+07:00' });
  await admin(env.srv, TOKEN, 'POST', 'campaigns', { id: 'coffee', name: 'Coffee ฿50 off', kind: 'amount', value: 5000,
    currency: 'THB', tz_offset: '+07:00' });
  for (const c of ['SONG-KRAN-01', 'SONG-KRAN-02']) await fc('voucher_code_set', 1, `{v}:c:${c.replace(/-/g, '')}`, 'campaign', 'songkran', 'max_uses', 10);
  await fc('voucher_code_set', 1, '{v}:c:COFFEE50', 'campaign', 'coffee', 'max_uses', 10);

  // today, through nginx: three of 1,200.00 with 10% off, two of 300.00 with 50.00 off
  const orders = [['SONG-KRAN-01', 120000], ['SONG-KRAN-01', 120000], ['SONG-KRAN-01', 120000], ['COFFEE50', 30000], ['COFFEE50', 30000]];
  let discount = 0;
  let revenue = 0;
  for (const [i, [code, amount]] of orders.entries()) {
    const j = await redeem(code, amount, `ov-${i}`);
    discount += j.discount;
    revenue += amount;
  }
  assert.equal(discount, 3 * 12000 + 2 * 5000);
  // two deliveries sent today, one redemption three days ago
  const now = Math.floor(Date.now() / 1000);
  for (const m of ['alice', 'bob']) {
    await env.srv.redis('XADD', '{v}:dl:songkran', '*', 'run', 'm1', 'member', m, 'status', 'sent', 'channel', 'line',
      'code', 'SONGKRAN01', 'attempt', 1, 'at', now);
  }
  await env.srv.redis('XADD', '{v}:log', '*', 'type', 'redeem', 'code', 'COFFEE50', 'campaign', 'coffee', 'customer', '',
    'amount', 50000, 'currency', 'THB', 'discount', 5000, 'at', now - 3 * 86400);

  const page = await dashboard(env.browser, env.srv, TOKEN, '#/overview', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('body[data-drawn="overview"]');
  const money = (minor) => '฿' + (minor / 100).toLocaleString('en-US', { minimumFractionDigits: 2 });
  const roi = (rev, dis) => { const x = Math.trunc((rev - dis) * 100 / dis); return `${Math.trunc(x / 100)}.${String(x % 100).padStart(2, '0')}`; };
  const v = await tiles(page);
  assert.equal(v['ov-today-redemptions'], '5');
  assert.equal(v['ov-today-discount'], money(discount));
  assert.equal(v['ov-today-discount'], '฿460.00');
  assert.equal(v['ov-today-revenue'], money(revenue));
  assert.equal(v['ov-today-roi'], roi(revenue, discount));
  assert.equal(v['ov-today-sent'], '2');
  assert.equal(v['ov-30-redemptions'], '6');
  assert.equal(v['ov-30-discount'], money(discount + 5000));
  assert.equal(v['ov-30-revenue'], money(revenue + 50000));
  assert.equal(v['ov-30-revenue'], '฿4,700.00');
  assert.equal(v['ov-30-roi'], roi(revenue + 50000, discount + 5000));
  assert.equal(v['ov-30-issued'], '3');

  // the charts: one line a campaign, what they hold, and ink on the canvas
  assert.equal(await page.$eval('#chart-redemptions', (e) => e.dataset.total), '6');
  assert.equal(await page.$eval('#chart-redemptions', (e) => e.dataset.series), '2');
  assert.equal(await page.$eval('#chart-money', (e) => e.dataset.total), String(revenue + 50000 + discount + 5000));
  const legend = await page.$eval('#chart-redemptions .u-legend', (e) => e.textContent);
  assert.match(legend, /Songkran 10%/);
  assert.match(legend, /Coffee ฿50 off/);
  assert.ok(await inked(page, '#chart-redemptions') > 300, 'the redemptions chart drew');
  assert.ok(await inked(page, '#chart-money') > 300, 'the money chart drew');
  const row = await page.$eval('#overview-campaigns tr[data-id="coffee"]', (tr) => [...tr.cells].map((c) => c.textContent));
  assert.deepEqual(row, ['Coffee ฿50 off', '3', '฿150.00', '฿1,100.00', '6.33', '0', '1']);
  await shot(page, 'overview-en');

  await page.click('#lang');
  await page.waitForSelector('body[data-drawn="overview"]');
  await page.waitForFunction(() => /วันนี้/.test(document.querySelector('#overview-body h2')?.textContent || ''));
  const th = await tiles(page);
  assert.equal(th['ov-today-discount'], '฿460.00');
  assert.equal(th['ov-30-revenue'], '฿4,700.00');
  assert.ok(await inked(page, '#chart-redemptions') > 300, 'drawn again in Thai');
  await shot(page, 'overview-th');
  assert.deepEqual(page.problems, []);
  await page.close();

  // a phone: nothing wider than the screen
  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/overview', { lang: 'th', width: 390, height: 844 });
  await phone.waitForSelector('body[data-drawn="overview"]');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'fits a phone');
  assert.ok(await inked(phone, '#chart-money') > 300);
  await shot(phone, 'overview-phone-th');
  assert.deepEqual(phone.problems, []);
  await phone.close();
});
