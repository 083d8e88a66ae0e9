// The marketers' dashboard against a real admin API: voucherd serving it
// behind nginx, Redis behind both.  Log in (a wrong token refused), create
// a campaign with every rule, see it listed, the engine's refusal next to
// its field, edit it, pause and resume it; the reports screen's gift-card
// liability in baht and Thai dates.  Skipped, with the reason, when the
// voucherd built here has no admin API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newPage, shot, pairs } from './lib/harness.mjs';
import { adminEnv, fill, text, textOnce } from './lib/admin.mjs';

const TOKEN = 'marketer-7f3a9c1e5d2b8046';
const env = adminEnv({ token: TOKEN });

const campaignGet = async (id) => pairs(await env.srv.redis('FCALL', 'voucher_campaign_get', 1, `{v}:k:${id}`));

test('a marketer logs in and runs a campaign through the admin API', async (t) => {
  if (env.skipped(t)) return;
  const page = await newPage(env.browser, { lang: 'en', width: 1280, height: 900 });
  await page.goto(`${env.srv.base}/dashboard/`);
  await page.waitForSelector('#login');

  await page.type('#token', 'not-the-token-at-all');
  await page.click('#login-submit');
  await page.waitForFunction(() => /not accepted/.test(document.querySelector('#err-token').textContent));
  await fill(page, '#token', TOKEN);
  await page.click('#login-submit');
  await page.waitForSelector('#campaigns');
  await page.waitForFunction(() => !/Loading/.test(document.querySelector('#campaigns tbody').textContent));

  await page.click('#new');
  await page.waitForSelector('#campaign-form');
  await page.type('#f-id', 'weekend');
  await page.type('#f-name', '<script>alert(1)</script> Weekend');
  await page.select('#f-kind', 'percent');
  await page.type('#f-value', '12.5');
  await page.type('#f-cap', '200');
  await page.click('#f-day-6');
  await page.click('#f-day-7');
  await page.type('#f-hours_from', '1700');
  await page.type('#f-hours_to', '1900');
  await fill(page, '#f-tz_offset', '+99:00');
  await page.type('#f-max_redemptions', '100');
  await page.type('#f-max_discount', '5,000');
  await page.type('#f-per_customer', '1');
  await page.type('#f-code_max_uses', '1');
  await page.type('#f-min_amount', '1,000');
  await page.type('#f-include_categories', 'tea, coffee');
  await page.click('#save');
  // the engine refuses the zone: its message next to the field, nothing lost
  assert.match(await textOnce(page, '#err-tz_offset'), /The server says: .*tz_offset/);
  assert.deepEqual(await env.srv.redis('EXISTS', '{v}:k:weekend'), 0);
  await shot(page, 'admin-campaign-refused-en');
  await fill(page, '#f-tz_offset', '+07:00');
  await page.click('#save');
  await page.waitForSelector('#campaigns tr[data-id="weekend"]');

  const c = await campaignGet('weekend');
  assert.equal(c.kind, 'percent');
  assert.equal(String(c.value), '1250');
  assert.equal(String(c.cap), '20000');
  assert.equal(c.days, '67');
  assert.equal(c.hours, '17:00-19:00');
  assert.equal(String(c.min_amount), '100000');
  assert.equal(String(c.max_discount), '500000');
  assert.equal(c.name, '<script>alert(1)</script> Weekend');
  const row = await page.$eval('#campaigns tr[data-id="weekend"]', (tr) => ({ text: tr.textContent, scripts: tr.querySelectorAll('script').length }));
  assert.match(row.text, /<script>alert\(1\)<\/script> Weekend/);
  assert.equal(row.scripts, 0);
  await shot(page, 'admin-campaigns-en');

  // edit: the form shows what is stored; a change is saved
  await page.click('#campaigns tr[data-id="weekend"] a');
  await page.waitForFunction(() => document.querySelector('#f-value').value === '12.5');
  assert.equal(await page.$eval('#f-day-6', (i) => i.checked), true);
  assert.equal(await page.$eval('#f-hours_to', (i) => i.value), '19:00');
  assert.equal(await page.$eval('#f-min_amount', (i) => i.value), '1000.00');
  await fill(page, '#f-value', '15');
  await page.click('#lang');
  await shot(page, 'admin-campaign-edit-th');
  await page.click('#save');
  await page.waitForSelector('#campaigns tr[data-id="weekend"]');
  assert.equal(String((await campaignGet('weekend')).value), '1500');

  // pause and resume
  await page.click('#campaigns tr[data-id="weekend"] button');
  // the status cell (the pause button says the same word)
  await page.waitForFunction(() => document.querySelector('#campaigns tr[data-id="weekend"] td:nth-child(4)')?.textContent === 'หยุดชั่วคราว');
  assert.equal((await campaignGet('weekend')).status, 'paused');
  await shot(page, 'admin-campaigns-th');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('reports: what the gift cards still hold, in baht, by age and by the day it ends', async (t) => {
  if (env.skipped(t)) return;
  const call = async (method, p, body) => {
    const r = await fetch(`${env.srv.base}/v1/${p}`, { method, body: body && JSON.stringify(body),
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } });
    return { status: r.status, json: await r.json() };
  };
  assert.equal((await call('POST', 'campaigns', { id: 'gifts', kind: 'gift_card', value: 100000,
    currency: 'THB', tz_offset: '+07:00' })).status, 201);
  assert.equal((await call('POST', 'codes', { code: 'GIFT-1', campaign: 'gifts' })).status, 201);
  const cr = await call('POST', 'codes/GIFT-1/credit', { amount: 25000, expires_at: '2099-12-31', note: 'ของขวัญปีใหม่' });
  assert.equal(cr.status, 200);
  assert.equal(cr.json.balance, 125000);

  const page = await newPage(env.browser, { lang: 'th', width: 1280, height: 900 });
  await page.goto(`${env.srv.base}/dashboard/`);
  await page.waitForSelector('#login');
  await page.type('#token', TOKEN);
  await page.click('#login-submit');
  await page.waitForSelector('#campaigns');
  await page.goto(`${env.srv.base}/dashboard/#/reports`);
  await page.waitForSelector('#liability-campaigns tr[data-campaign="gifts"]');
  const row = await text(page, '#liability-campaigns tr[data-campaign="gifts"]');
  assert.match(row, /gifts\s*1\s*฿1,250\.00\s*฿250\.00/, 'one card: ฿1,250.00, ฿250.00 of it ending');
  assert.match(await text(page, '#liability-age'), /ภายใน 30 วันที่ผ่านมา\s*฿1,250\.00/);
  const exp = await text(page, '#liability-expiry');
  assert.match(exp, /31 ธ\.ค\. 2642\s*฿250\.00/, 'the day it ends in the Buddhist era');
  assert.match(exp, /ไม่หมดอายุ\s*฿1,000\.00/, 'and what never ends');
  await shot(page, 'admin-reports-th');
  await page.click('#lang');
  await page.waitForFunction(() => /31 Dec 2099/.test(document.querySelector('#liability-expiry')?.textContent ?? ''));
  assert.match(await text(page, '#liability-age'), /in the last 30 days/);
  assert.deepEqual(page.problems, []);
  await page.close();
});
