// The marketer's journey, end to end in Chromium against real nginx,
// Redis and voucherd (its admin API, a webhook channel posting to a
// receiver this test runs): log in, create a campaign, issue codes and
// watch the job finish, import members, build a segment, schedule a
// birthday automation, preview it, run it now, see the send history, then
// redeem one sent code on the in-store page by typing it and one by a QR
// picture fed to the scanner, and find both in the campaign's report.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { newPage, shot, shots, trail, root } from './lib/harness.mjs';
import { fill, text, until, inked, adminEnv, textOnce } from './lib/admin.mjs';

const TOKEN = 'marketer-7f3a9c1e5d2b8046';
const dir = mkdtempSync(path.join(tmpdir(), 'vb-journey-'));
const received = [];
let receiver;

// the fake channel: a webhook receiver that takes every message, listening
// before the servers that post to it start
const env = adminEnv(async () => {
  receiver = http.createServer((q, r) => {
    let b = '';
    q.on('data', (d) => { b += d; });
    q.on('end', () => {
      try { received.push({ body: JSON.parse(b), sig: q.headers['x-voucher-signature'] }); } catch { /* counted as nothing */ }
      r.writeHead(200);
      r.end('ok');
    });
  });
  await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
  return { token: TOKEN, webhook: `http://127.0.0.1:${receiver.address().port}/hook` };
});

after(async () => {
  if (receiver) receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

// this month in Bangkok, for the birthdays
const ym = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Bangkok', year: 'numeric', month: '2-digit' }).format(new Date());
const [, month] = ym.split('-');
const other = String((Number(month) % 12) + 1).padStart(2, '0');

test('a marketer runs a birthday campaign from the dashboard, and the shop redeems its codes', async (t) => {
  if (env.skipped(t)) return;
  const page = await newPage(env.browser, { lang: 'th', width: 1280, height: 900 });
  await page.goto(`${env.srv.base}/dashboard/`);
  await page.waitForSelector('#login');
  await page.type('#token', TOKEN);
  await page.click('#login-submit');
  await page.waitForSelector('#campaigns');

  // a campaign: ฿100.00 off, for birthdays
  await page.click('#new');
  await page.waitForSelector('#campaign-form');
  await page.type('#f-id', 'hbd');
  await page.type('#f-name', 'สุขสันต์วันเกิด');
  await page.select('#f-kind', 'amount');
  await page.type('#f-value', '100');
  await page.type('#f-min_amount', '500');
  await page.click('#save');
  await page.waitForSelector('#campaigns tr[data-id="hbd"]');

  // issue codes: the job's bar goes to the end
  await page.goto(`${env.srv.base}/dashboard/#/codes`);
  await page.waitForSelector('#issue-form select option[value="hbd"]');
  await page.select('#f-issue_campaign', 'hbd');
  await page.type('#f-count', '30,000');
  await page.type('#f-pattern', 'HBD-####-####');
  await page.click('#issue-go');
  await page.waitForSelector('#job');
  const seen = new Set();
  await until(async () => {
    const s = await page.$eval('#job', (j) => ({ state: j.dataset.state, done: j.dataset.done }));
    seen.add(s.done);
    return s.state === 'done';
  }, 'the issue job to finish', 120000);
  const bar = await page.$eval('#job-bar', (b) => ({ value: b.value, max: b.max }));
  assert.equal(bar.max, 30000);
  assert.equal(bar.value, 30000, 'the bar is full');
  assert.match(await text(page, '#job-line'), /30,000 จาก 30,000 \(100%\)/);
  await page.waitForSelector('#job-download');
  const sample = await page.$$eval('#job-sample li', (x) => x.map((l) => l.textContent));
  assert.equal(sample.length, 10);
  for (const c of sample) assert.match(c, /^HBD-[0-9A-Z]{4}-[0-9A-Z]{4}$/, 'codes as printed, with their dashes');
  await shot(page, 'journey-codes-issued-th');

  // members, one named like a script
  await page.goto(`${env.srv.base}/dashboard/#/members`);
  await page.waitForSelector('#f-members_text');
  const csv = ['id,name,phone,email,birthday,tier,tags',
    `alice,<script>alert(1)</script>,0812345678,alice@example.com,1990-${month}-01,gold,vip`,
    `bob,บ๊อบ ใจดี,0898765432,bob@example.com,1985-${month}-01,silver,<b>tea</b>`,
    `carl,Carl,,carl@example.com,1980-${other}-15,silver,`].join('\n');
  await page.$eval('#f-members_text', (a, v) => { a.value = v; a.dispatchEvent(new Event('input', { bubbles: true })); }, csv);
  await page.click('#members-import-go');
  await page.waitForSelector('#job[data-state="done"]', { timeout: 30000 });
  await page.goto(`${env.srv.base}/dashboard/#/members?q=ali`);
  await page.waitForSelector('#members tr[data-id="alice"]');
  const row = await page.$eval('#members tr[data-id="alice"]', (tr) => ({ t: tr.textContent, s: tr.querySelectorAll('script').length }));
  assert.match(row.t, /<script>alert\(1\)<\/script>/);
  assert.equal(row.s, 0);

  // a segment: born this month
  await page.goto(`${env.srv.base}/dashboard/#/segments`);
  await page.waitForSelector('#f-rule-kind-0');
  await page.select('#f-rule-kind-0', 'birth_month');
  await page.waitForFunction(() => document.querySelector('#segment-count').dataset.count === '2');
  assert.equal(await text(page, '#segment-text'), 'birth_month');
  assert.match(await text(page, '#segment-count'), /2 จาก 3 คน/);
  await shot(page, 'journey-segment-th');
  await (await page.$('#main')).screenshot({ path: path.join(shots, 'readme-segment-th.png') });
  await page.click('#segment-use');

  // the automation: birthdays on the day, 09:00, the webhook channel
  await page.waitForSelector('#auto-form');
  assert.equal(await page.$eval('#f-segment', (i) => i.value), 'birth_month');
  await page.select('#f-campaign', 'hbd');
  await page.select('#f-kind', 'birthdays day');
  await page.click('#f-catch_up');   // no catch-up: the run is made by hand below
  await page.type('#f-channel', 'nope');
  await page.type('#f-pattern', 'HBD-####-####-####');
  await page.type('#f-valid_days', '30');
  await page.select('#f-locale', 'th-TH');
  await page.type('#f-message', 'สุขสันต์วันเกิด {{name}} รับส่วนลด {{discount}} ด้วยโค้ด {{code}} ใช้ได้ถึง {{expires_at}}');
  await page.click('#auto-save');
  // the engine refuses the channel: its reason next to the field
  assert.match(await textOnce(page, '#err-channel'), /เซิร์ฟเวอร์แจ้งว่า: .*channel/);
  assert.equal(await page.$eval('#f-message', (i) => i.value).then((v) => v.includes('{{discount}}')), true, 'nothing typed lost');
  await shot(page, 'journey-automation-refused-th');
  await fill(page, '#f-channel', 'hook');
  await page.click('#auto-save');
  await page.waitForSelector('#auto-run');
  await page.waitForSelector('#next-runs li');
  assert.match(await text(page, '#next-runs li'), /09:00/);

  // the calendar of next runs
  await page.goto(`${env.srv.base}/dashboard/#/automations`);
  await page.waitForSelector('#automations tr[data-campaign="hbd"]');
  await page.waitForSelector('.calendar li[data-at]');
  await shot(page, 'journey-automations-th');
  await page.goto(`${env.srv.base}/dashboard/#/automations/hbd`);
  await page.waitForSelector('#auto-preview');

  // preview: the messages as they will be sent
  await page.click('#auto-preview');
  await page.waitForSelector('#preview-count');
  assert.equal(await page.$eval('#preview-count', (p) => p.dataset.recipients), '2');
  const msgs = await page.$$eval('#preview .message', (x) => x.map((m) => m.textContent));
  assert.equal(msgs.length, 2);
  assert.ok(msgs.some((m) => m.includes('สุขสันต์วันเกิด <script>alert(1)</script> รับส่วนลด ฿100.00')), msgs.join('\n'));
  assert.ok(msgs.some((m) => m.includes('บ๊อบ ใจดี')));
  assert.equal(await page.$$eval('#preview script', (x) => x.length), 0);
  await shot(page, 'journey-preview-th');
  await (await page.$('#preview')).screenshot({ path: path.join(shots, 'readme-preview-th.png') });

  // run now: the fake channel receives both
  await page.click('#auto-run');
  await page.waitForSelector('#run-result');
  assert.equal(await page.$eval('#run-result', (r) => r.dataset.queued), '2');
  await until(() => received.length >= 2, 'two messages at the webhook');
  const byMember = Object.fromEntries(received.map((r) => [r.body.member.id, r.body]));
  assert.deepEqual(Object.keys(byMember).sort(), ['alice', 'bob']);
  for (const r of received) assert.match(r.sig, /^t=\d+,v1=[0-9a-f]{64}$/);
  const codeA = byMember.alice.code;
  const codeB = byMember.bob.code;
  assert.match(codeA, /^HBD-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.match(byMember.bob.message, new RegExp(`บ๊อบ ใจดี รับส่วนลด ฿100\\.00 ด้วยโค้ด ${codeB}`));

  // the send history
  await until(async () => {
    await page.click('#history-refresh').catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    return (await page.$$('#deliveries tr[data-status="sent"]')).length === 2;
  }, 'two sent deliveries in the history');
  const hist = await page.$$eval('#deliveries tr[data-status="sent"] td.mono', (x) => x.map((c) => c.textContent).sort());
  assert.deepEqual(hist, [codeA, codeB].sort(), 'the history shows the codes as sent');
  await page.click('#lang');
  await page.waitForSelector('#auto-form');
  await shot(page, 'journey-history-en');
  await page.close();

  // the in-store page: one code typed, one scanned from a picture
  const store = await newPage(env.browser, { lang: 'th' });
  await store.goto(`${env.srv.base}/dashboard/store/`);
  await store.waitForSelector('body[data-ready="1"]');
  await store.type('#code', codeA.toLowerCase());
  await store.type('#amount', '1,200');
  await store.click('#check');
  // a member's code asks for the member, next to the field
  await store.waitForSelector('#result[data-state="refused"]');
  assert.notEqual(await store.$eval('#err-customer', (p) => p.textContent), '');
  await store.type('#customer', 'alice');
  await store.click('#check');
  await store.waitForSelector('#result[data-state="valid"]');
  await store.click('#redeem');
  await store.waitForSelector('#result[data-state="redeemed"]');
  await store.click('#next');
  const png = path.join(dir, 'b.png');
  execFileSync(path.join(root, 'build/worker/voucherctl'), ['qr', codeB, '--format', 'png', '--scale', '6', '--output', png]);
  await store.type('#amount', '800');
  await store.type('#customer', 'bob');
  await (await store.$('#photo')).uploadFile(png);
  await store.waitForFunction((c) => document.querySelector('#code').value === c, {}, codeB);
  await store.waitForSelector('#result[data-state="valid"]');
  await store.click('#redeem');
  await store.waitForSelector('#result[data-state="redeemed"]');
  await shot(store, 'journey-store-th');
  assert.deepEqual(store.problems, []);
  await store.close();
  const redeemed = (await trail(env.srv)).filter((e) => e.type === 'redeem' && e.campaign === 'hbd');
  assert.equal(redeemed.length, 2);

  // both in the report (the admin API's report route), and in the code's life
  const page2 = await newPage(env.browser, { lang: 'en', width: 1280, height: 900 });
  await page2.evaluateOnNewDocument((tk) => sessionStorage.setItem('voucher.admin_token', tk), TOKEN);
  await page2.goto(`${env.srv.base}/dashboard/#/codes/${codeA}`);
  await page2.waitForSelector('#code-life tr[data-type="redeem"]');
  await page2.waitForSelector('#code-life tr[data-type="delivered"]');
  assert.equal(await text(page2, '#code-title'), codeA);
  await shot(page2, 'journey-code-life-en');
  const rep = await page2.evaluate(async (tk) => (await fetch('/v1/campaigns/hbd/report', { headers: { Authorization: 'Bearer ' + tk } })).json(), TOKEN);
  assert.equal(rep.delivered, 2);
  assert.equal(rep.redemptions, 2);
  assert.equal(rep.came_back, 2);
  assert.equal(rep.discount_given, 20000);
  assert.equal(rep.revenue, 200000);
  assert.deepEqual(rep.recipients.map((r) => r.code).sort(), [codeA, codeB].sort());

  // the same on the reports screen (the funnel), and on the overview's chart
  await page2.goto(`${env.srv.base}/dashboard/#/reports`);
  await page2.waitForSelector('body[data-drawn="reports"]');
  await page2.select('#r-campaign', 'hbd');
  await page2.click('#report-form button[type="submit"]');
  await page2.waitForSelector('#campaign-report[data-campaign="hbd"]');
  const funnel = await page2.$$eval('#funnel .funnel-row', (rs) => Object.fromEntries(rs.map((x) => [x.dataset.step, x.dataset.value])));
  assert.equal(funnel.delivered, '2');
  assert.equal(funnel.came_back, '2');
  assert.equal(funnel.redemptions, '2');
  await shot(page2, 'journey-report-en');
  await page2.goto(`${env.srv.base}/dashboard/#/overview`);
  await page2.waitForSelector('body[data-drawn="overview"]');
  assert.equal(await page2.$eval('#ov-today-redemptions .tile-value', (e) => e.textContent), '2');
  assert.equal(await page2.$eval('#chart-redemptions', (e) => e.dataset.total), '2');
  assert.equal(await page2.$eval('tr[data-id="hbd"] td:last-child', (e) => e.textContent), '30,002',
    'codes issued: the job\'s 30,000 and the two sent, grouped');
  assert.ok(await inked(page2, '#chart-redemptions') > 300, 'the redemptions chart drew');
  await shot(page2, 'journey-overview-en');
  assert.deepEqual(page2.problems, []);
  await page2.close();
});
