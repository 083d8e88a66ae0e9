// The codes screen against voucherd's admin API behind nginx: a job of a
// million codes cancelled from its panel; a CSV import refused with its
// lines named, then accepted; an export to download; a gift card found as
// it was printed, topped up (the engine's reason next to the amount), its
// ledger; disable and enable; a code made of HTML shown as text; Redis
// away (503) said plainly with the amount kept; a phone's width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot, pairs } from './lib/harness.mjs';
import { admin, dashboard, fill, text, until, adminEnv, textOnce } from './lib/admin.mjs';

const TOKEN = 'marketer-7f3a9c1e5d2b8046';
const env = adminEnv({ token: TOKEN }, async (srv) => {
  await admin(srv, TOKEN, 'POST', 'campaigns', { id: 'spring', name: 'Spring <b>sale</b>', kind: 'percent', value: 1000, currency: 'THB' });
  await admin(srv, TOKEN, 'POST', 'campaigns', { id: 'gc', name: 'บัตรของขวัญ', kind: 'gift_card', value: 50000, currency: 'THB' });
  await admin(srv, TOKEN, 'POST', 'codes', { code: 'GIFT-7Q2M-94KD', campaign: 'gc', customer: 'alice' });
});

test('issue a million codes and cancel the job from its panel', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/codes', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('#f-issue_campaign option[value="spring"]');
  // the form's own checks, next to the fields
  await page.click('#issue-go');
  assert.match(await text(page, '#err-issue_campaign'), /Required/);
  assert.match(await text(page, '#err-count'), /A whole number/);
  await page.select('#f-issue_campaign', 'spring');
  await page.type('#f-count', '1,000,000');
  await page.type('#f-pattern', 'SALE-##');
  await page.click('#issue-go');
  // the engine's reason next to the pattern
  assert.match(await textOnce(page, '#err-pattern'), /The server says: .*pattern/);
  await fill(page, '#f-pattern', 'SALE-####-####-####');
  await page.click('#issue-go');
  await page.waitForSelector('#job #job-cancel:not([hidden])');
  await page.click('#job-cancel');
  await page.waitForSelector('#job[data-state="cancelled"]', { timeout: 60000 });
  const j = await page.$eval('#job', (x) => ({ done: Number(x.dataset.done), total: Number(x.dataset.total) }));
  assert.equal(j.total, 1000000);
  assert.ok(j.done < j.total, `cancelled part way (${j.done})`);
  assert.equal(await page.$eval('#job-cancel', (b) => b.hidden), true, 'no cancel once it ended');
  assert.match(await text(page, '#job-line'), /Cancelled/);
  await shot(page, 'codes-cancelled-en');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('import a CSV: refused lines named, nothing written; then imported and exported', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/codes', { lang: 'th', width: 1280, height: 900 });
  await page.waitForSelector('#f-import_campaign option[value="spring"]');
  await page.select('#f-import_campaign', 'spring');
  const bad = 'code,max_uses\nVIP-0001,1\nVIP-0002,many\nVIP-0003,x\n';
  await page.$eval('#f-import_text', (a, v) => { a.value = v; a.dispatchEvent(new Event('input', { bubbles: true })); }, bad);
  await page.click('#import-go');
  await page.waitForSelector('#job[data-state="failed"] #job-errors-table');
  const lines = await page.$$eval('#job-errors-table tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(lines.map((l) => l[0]), ['3', '4']);
  assert.match(lines[0][1], /max_uses/);
  assert.match(await text(page, '#job-reason'), /เซิร์ฟเวอร์แจ้งว่า: rejected, nothing imported/);
  assert.equal(await env.srv.redis('EXISTS', '{v}:c:VIP0001'), 0, 'nothing imported');
  await shot(page, 'codes-import-refused-th');

  await page.$eval('#f-import_text', (a) => { a.value = 'code,max_uses\nVIP-0001,1\nVIP-0002,2\n'; a.dispatchEvent(new Event('input', { bubbles: true })); });
  await page.click('#import-go');
  await page.waitForSelector('#job[data-state="done"]');
  assert.equal(await env.srv.redis('EXISTS', '{v}:c:VIP0002'), 1);

  await page.select('#f-export_campaign', 'spring');
  await page.click('#export-go');
  await page.waitForSelector('#job[data-state="done"] #job-download');
  const dl = await page.$eval('#job-download', (a) => ({ name: a.download, href: a.href }));
  assert.match(dl.name, /^spring-j\d+\.csv$/);
  assert.match(dl.href, /^blob:/, 'made in the page, no token in a URL');
  const id = await page.$eval('#job', (j) => j.dataset.id);
  const csv = await admin(env.srv, TOKEN, 'GET', `jobs/${id}/output`);
  assert.match(csv, /^code,campaign,status/);
  assert.match(csv, /VIP0002,spring,active,2/);
  await shot(page, 'codes-export-th');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('a gift card: found as printed, topped up, its ledger; disabled and enabled; HTML as text', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/codes', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('#f-find');
  await page.type('#f-find', 'gift-7q2m-94kd');
  await page.click('#find-go');
  await page.waitForSelector('#credit-form');
  assert.equal(await text(page, '#code-title'), 'gift-7q2m-94kd', 'shown as typed');
  assert.equal(await text(page, '#code-balance'), '฿500.00');
  await page.type('#f-credit_amount', '12.345');
  await page.click('#credit-go');
  assert.match(await text(page, '#err-credit_amount'), /An amount like 1200/);
  await fill(page, '#f-credit_amount', '250.50');
  await page.type('#f-credit_note', 'birthday <b>gift</b>');
  await page.click('#credit-go');
  await page.waitForFunction(() => document.querySelector('#code-balance')?.textContent === '฿750.50');
  await page.waitForSelector('#code-life tr[data-type="credit"]');
  const row = await page.$eval('#code-life tr[data-type="credit"]', (r) => ({ t: r.textContent, b: r.querySelectorAll('b').length }));
  assert.match(row.t, /Topped up/);
  assert.match(row.t, /฿250\.50/);
  assert.match(row.t, /฿750\.50/);
  assert.match(row.t, /birthday <b>gift<\/b>/);
  assert.equal(row.b, 0);
  assert.equal(pairs(await env.srv.redis('FCALL', 'voucher_code_get', 1, '{v}:c:GIFT7Q2M94KD')).balance, 75050);
  await shot(page, 'codes-giftcard-en');
  await page.click('#code-toggle');
  await page.waitForFunction(() => document.querySelector('#code-status')?.textContent === 'Disabled');
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#code-status')?.textContent === 'ปิดใช้งาน');
  await shot(page, 'codes-giftcard-th');
  await page.click('#code-toggle');
  await page.waitForFunction(() => document.querySelector('#code-status')?.textContent === 'ใช้งานได้');

  // a code made of HTML: the engine's answer, as text
  await page.goto(`${env.srv.base}/dashboard/#/codes/${encodeURIComponent('<img src=x onerror=window.__x=1>')}`);
  await until(async () => (await page.$('#code-missing')) || (await page.$eval('#banner', (b) => !b.hidden)), 'an answer');
  assert.equal(await page.$$eval('main img', (x) => x.length), 0);
  assert.equal(await page.evaluate(() => window.__x), undefined);
  assert.match(await text(page, '#code-title'), /<img src=x onerror/);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('Redis away: a top-up says so and keeps the amount; a phone\'s width', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/codes/GIFT-7Q2M-94KD', { lang: 'th' });
  await page.waitForSelector('#credit-form');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await shot(page, 'codes-phone-th');
  await page.type('#f-credit_amount', '100');
  await env.srv.redisStop();
  try {
    await page.click('#credit-go');
    await page.waitForSelector('#banner:not([hidden])');
    assert.match(await text(page, '#banner'), /ไม่พร้อมใช้งาน|ติดต่อ/);
    assert.equal(await page.$eval('#f-credit_amount', (i) => i.value), '100', 'nothing typed lost');
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector('#banner:not([hidden])');
    await shot(page, 'codes-unavailable-th');
  } finally {
    await env.srv.redisStart();
  }
  await page.close();
});
