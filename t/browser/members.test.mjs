// Members and segments against voucherd's admin API behind nginx: an
// import refused with its lines named, then made; search; a member named
// <script> and tags of HTML shown as text; a member's page (codes
// received and used, no loyalty programme said plainly); the segment
// builder: the engine's reason next to its rule, a live count and sample
// that follow the typing, every rule of the grammar; Thai and English; a
// phone's width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from './lib/harness.mjs';
import { admin, dashboard, text, until, adminEnv, textOnce } from './lib/admin.mjs';

const TOKEN = 'marketer-7f3a9c1e5d2b8046';
const env = adminEnv({ token: TOKEN, phone_country: 'TH' }, async (srv) => {
  await admin(srv, TOKEN, 'POST', 'campaigns', { id: 'spring', name: 'Spring', kind: 'percent', value: 1000, currency: 'THB' });
});

const paste = (page, sel, v) => page.$eval(sel, (a, x) => { a.value = x; a.dispatchEvent(new Event('input', { bubbles: true })); }, v);

test('import members, search them, a member named <script> and their page', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/members', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('#f-members_text');
  await paste(page, '#f-members_text', 'id,name,birthday\nzed,Zed,1990-02-31\nyan,Yan,1990-13-01\n');
  await page.click('#members-import-go');
  await page.waitForSelector('#job[data-state="failed"] #job-errors-table');
  const lines = await page.$$eval('#job-errors-table tbody tr td:first-child', (x) => x.map((c) => c.textContent));
  assert.deepEqual(lines, ['2', '3']);
  assert.match(await text(page, '#job-errors-table'), /birthday/);
  await shot(page, 'members-import-refused-en');

  const csv = ['id,name,phone,email,birthday,tier,tags,purchases,spend,last_purchase',
    'alice,<script>alert(1)</script>,081-234-5678,alice@example.com,1990-03-02,gold,vip;<img/src=x/onerror=window.__x=1>,10,1250000,2026-11-01',
    'bob,บ๊อบ ใจดี,0898765432,bob@example.com,1985-07-04,silver,coffee,2,90000,2026-01-05',
    'carl,Carl,,carl@example.com,1980-07-15,silver,coffee;vip,0,0,'].join('\n');
  await paste(page, '#f-members_text', csv);
  await page.click('#members-import-go');
  await page.waitForSelector('#job[data-state="done"]');
  await page.goto(`${env.srv.base}/dashboard/#/members?tier=silver`);
  await page.waitForSelector('#members tr[data-id="carl"]');
  assert.deepEqual(await page.$$eval('#members tbody tr', (x) => x.map((r) => r.dataset.id).sort()), ['bob', 'carl']);
  await page.goto(`${env.srv.base}/dashboard/#/members?q=ali`);
  await page.waitForSelector('#members tr[data-id="alice"]');
  const row = await page.$eval('#members tr[data-id="alice"]', (tr) => ({ t: tr.textContent, el: tr.querySelectorAll('script, img').length }));
  assert.match(row.t, /<script>alert\(1\)<\/script>/);
  assert.match(row.t, /<img\/src=x\/onerror=window.__x=1>/);
  assert.match(row.t, /฿12,500\.00/);
  assert.equal(row.el, 0);
  await shot(page, 'members-en');
  await page.click('#lang');
  await page.waitForFunction(() => /ค้นหาสมาชิก/.test(document.querySelector('#member-filter').textContent));
  await page.waitForSelector('#members tr[data-id="alice"]');
  await shot(page, 'members-th');
  await page.click('#lang');
  await page.waitForSelector('#members tr[data-id="alice"]');

  // her page: the codes she received and used
  await admin(env.srv, TOKEN, 'POST', 'codes', { code: 'SPRING-ALICE-1', campaign: 'spring', customer: 'alice' });
  await admin(env.srv, TOKEN, 'POST', 'codes', { code: 'SPRING-ALICE-2', campaign: 'spring', customer: 'alice' });
  const r = await fetch(`${env.srv.base}/vouchers/redeem`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code: 'SPRING-ALICE-2', customer: 'alice', idempotency_key: 'm-1', order: { amount: 50000, currency: 'THB' } }) });
  assert.equal(r.status, 200);
  await page.click('#members tr[data-id="alice"] a');
  await page.waitForSelector('#member-codes-table tbody tr[data-code]');
  assert.equal(await text(page, '#member-title'), '<script>alert(1)</script> (alice)');
  assert.match(await text(page, '#member-no-programme'), /no loyalty programme/);
  const codes = await page.$$eval('#member-codes-table tbody tr', (x) => x.map((r) => [r.dataset.code, r.cells[2].textContent]).sort());
  assert.deepEqual(codes, [['SPRINGALICE1', 'Active'], ['SPRINGALICE2', 'Used']]);
  assert.equal(await page.$$eval('main script, main img', (x) => x.length), 0);
  assert.equal(await page.evaluate(() => window.__x), undefined);
  await shot(page, 'member-page-en');
  await page.click('#lang');
  await page.waitForSelector('#member-codes-table');
  await shot(page, 'member-page-th');
  assert.deepEqual(page.problems, []);
  await page.close();

  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/members/alice', { lang: 'th' });
  await phone.waitForSelector('#member-codes-table');
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await shot(phone, 'member-phone-th');
  await phone.close();
});

test('the segment builder: a live count and sample, the engine\'s reason next to its rule', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/segments', { lang: 'th', width: 1280, height: 900 });
  await page.waitForSelector('#f-rule-kind-0');
  // everybody, at first
  await page.waitForFunction(() => document.querySelector('#segment-count').dataset.count === '3');
  assert.match(await text(page, '#segment-count'), /3 จาก 3 คน/);
  // a tier with no value: the engine says why, next to the rule
  await page.select('#f-rule-kind-0', 'tier');
  assert.match(await textOnce(page, '#err-rule-0'), /เซิร์ฟเวอร์แจ้งว่า: .*tier/);
  assert.equal(await page.$eval('#f-rule-value-0', (i) => i.getAttribute('aria-invalid')), 'true');
  // typing: the count follows (debounced: one answer for the last text)
  let calls = 0;
  page.on('request', (q) => { if (q.url().endsWith('/v1/segments/preview')) calls++; });
  await page.type('#f-rule-value-0', 'silver,gold', { delay: 20 });
  await page.waitForFunction(() => document.querySelector('#segment-count').dataset.count === '3');
  assert.ok(calls < 'silver,gold'.length, `${calls} previews for 11 keys`);
  assert.equal(await text(page, '#err-rule-0'), '');
  // and tags:coffee
  await page.click('#rule-add');
  await page.select('#f-rule-kind-1', 'tags');
  await page.type('#f-rule-value-1', 'coffee');
  await page.waitForFunction(() => document.querySelector('#segment-count').dataset.count === '2');
  assert.equal(await text(page, '#segment-text'), 'tier:silver,gold & tags:coffee');
  assert.deepEqual(await page.$$eval('#segment-members tbody tr', (x) => x.map((r) => r.dataset.id).sort()), ['bob', 'carl']);
  // born in July
  await page.click('#rule-add');
  await page.select('#f-rule-kind-2', 'birth_month');
  await page.select('#f-rule-value-2', '7');
  await page.waitForFunction(() => document.querySelector('#segment-text').textContent.endsWith('birth_month:7'));
  await page.waitForFunction(() => document.querySelector('#segment-count').dataset.count === '2');
  await shot(page, 'segments-th');
  // a list by phone, in any format (phone.country TH)
  await page.click('#rule-remove-2');
  await page.click('#rule-remove-1');
  await page.select('#f-rule-kind-0', 'list');
  await page.type('#f-rule-value-0', '+66812345678, carl');
  assert.equal(await text(page, '#segment-text'), 'list:+66812345678,carl');
  await page.waitForFunction(() => document.querySelector('#segment-members tr[data-id="alice"]'));
  assert.equal(await page.$eval('#segment-count', (c) => c.dataset.count), '2');
  assert.deepEqual(await page.$$eval('#segment-members tbody tr', (x) => x.map((r) => r.dataset.id).sort()), ['alice', 'carl']);
  assert.equal(await page.$$eval('#segment-members script, #segment-members img', (x) => x.length), 0);
  // the other rules of the grammar are accepted
  for (const [kind, value, n] of [['dormant', '30', '2'], ['rfm', 'champions,loyal,potential,at_risk,hibernating,need_attention,new_customers', null],
    ['new', '7', null], ['top', '1', '1']]) {
    await page.select('#f-rule-kind-0', kind);
    await page.type('#f-rule-value-0', value);
    const want = `${kind}:${value}`;
    await until(async () => page.$eval('#segment-count', (c, w) => c.dataset.for === w, want), `a count for ${want}`);
    assert.equal(await text(page, '#err-rule-0'), '', `${kind} accepted`);
    if (n) assert.equal(await page.$eval('#segment-count', (c) => c.dataset.count), n, kind);
  }
  // kept in the tab: a reload gives the same rules
  await page.reload();
  await page.waitForSelector('#f-rule-kind-0');
  assert.equal(await page.$eval('#f-rule-kind-0', (s) => s.value), 'top');
  await page.click('#lang');
  await page.waitForFunction(() => /of 3 members/.test(document.querySelector('#segment-count').textContent));
  await shot(page, 'segments-en');
  assert.deepEqual(page.problems, []);
  await page.close();

  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/segments', { lang: 'th' });
  await phone.waitForSelector('#segment-members');
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await shot(phone, 'segments-phone-th');
  await phone.close();
});
