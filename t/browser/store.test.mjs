// The in-store redemption page against real nginx + Redis: type a code,
// check it, redeem it; a double tap and a retry after a lost answer
// redeem once; a gift card pays part of an order; the engine's reasons in
// Thai and English; a campaign named like HTML stays text; the lockout;
// a QR picture made by voucherctl, fed to the page's photo scanner; Redis
// away (503): a clear message and the entries kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServers, launch, newPage, shot, pairs, trail, root } from './lib/harness.mjs';

let srv;
let browser;
const URL_STORE = () => `${srv.base}/dashboard/store/`;

async function campaign(id, ...f) { return srv.redis('FCALL', 'voucher_campaign_set', 1, `{v}:k:${id}`, ...f); }
async function code(c, ...f) { return srv.redis('FCALL', 'voucher_code_set', 1, `{v}:c:${c}`, ...f); }
async function codeGet(c) { return pairs(await srv.redis('FCALL', 'voucher_code_get', 1, `{v}:c:${c}`)); }

async function open(lang) {
  const page = await newPage(browser, { lang });
  await page.goto(URL_STORE());
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}

async function fill(page, sel, value) {
  await page.click(sel, { clickCount: 3 });
  await page.keyboard.press('Backspace');
  if (value) await page.type(sel, value);
}

// the answer to the last click: the page is idle again, then in that state
async function result(page, state) {
  await page.waitForFunction(() => !document.body.dataset.busy);
  await page.waitForSelector(`#result[data-state="${state}"]`, { timeout: 15000 });
  return page.$eval('#result', (el) => ({
    text: el.innerText,
    dd: Object.fromEntries([...el.querySelectorAll('dd')].map((d) => [d.className || d.previousElementSibling.textContent, d.textContent])),
    reason: el.dataset.reason,
  }));
}

async function idle(page) {
  await page.waitForFunction(() => !document.body.dataset.busy);
}

function noProblems(page) {
  assert.deepEqual(page.problems, [], 'no console errors or page errors');
}

before(async () => {
  srv = await startServers();
  browser = await launch();
  await campaign('welcome', 'name', 'Welcome', 'kind', 'percent', 'value', 1000, 'cap', 20000, 'currency', 'THB');
  await code('WELCOME10', 'campaign', 'welcome', 'max_uses', 100);
  await code('TAPTAP1', 'campaign', 'welcome', 'max_uses', 100);
  await code('RETRY1', 'campaign', 'welcome', 'max_uses', 100);
  await campaign('gift', 'kind', 'gift_card', 'currency', 'THB');
  await code('GIFT7Q2M94KD', 'campaign', 'gift', 'balance', 150000);
  await campaign('members', 'kind', 'amount', 'value', 5000, 'per_customer', 1, 'currency', 'THB');
  await code('MEMBER5', 'campaign', 'members', 'max_uses', 10);
  await campaign('<img/src=x/onerror=alert(1)><script>window.__x=1</script>', 'kind', 'amount', 'value', 1000);
  await code('HTMLNAME', 'campaign', '<img/src=x/onerror=alert(1)><script>window.__x=1</script>');
  await campaign('photo', 'kind', 'amount', 'value', 2500, 'currency', 'THB', 'min_amount', 50000);
  await code('PHOTO7K3M', 'campaign', 'photo', 'max_uses', 1);
});

after(async () => {
  if (browser) await browser.close();
  if (srv) {
    const log = await srv.errorLog();
    await srv.stop();
    assert.doesNotMatch(log, /\[(alert|crit|emerg)\]/, 'nginx error log');
  }
});

test('type a code, check it, redeem it (Thai, then English)', async () => {
  const page = await open('th');
  await shot(page, 'store-empty-th');
  await fill(page, '#code', 'welcome-10');
  await fill(page, '#amount', '1,200');
  await fill(page, '#order', 'R-1001');
  await page.click('#check');
  let r = await result(page, 'valid');
  assert.match(r.text, /ใช้ได้/);
  assert.match(r.text, /welcome-10/, 'the code as typed, with its dash');
  assert.equal(r.dd.discount, '฿120.00');
  assert.equal(r.dd['to-pay'], '฿1,080.00');
  await shot(page, 'store-valid-th');

  await page.click('#lang');
  r = await result(page, 'valid');
  assert.match(r.text, /Valid/);
  assert.equal(await page.$eval('html', (e) => e.lang), 'en');
  await shot(page, 'store-valid-en');

  await page.click('#redeem');
  r = await result(page, 'redeemed');
  assert.match(r.text, /Redeemed/);
  assert.equal(r.dd['to-pay'], '฿1,080.00');
  const key = await page.evaluate(() => document.body.dataset.attemptKey);
  assert.match(key, /^[0-9a-f]{32}$/);
  await shot(page, 'store-redeemed-en');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await page.click('#lang');
  await result(page, 'redeemed');
  await shot(page, 'store-redeemed-th');

  const c = await codeGet('WELCOME10');
  assert.equal(Number(c.used), 1);
  const e = (await trail(srv)).filter((x) => x.code === 'WELCOME10');
  assert.equal(e.length, 1);
  assert.equal(e[0].type, 'redeem');
  assert.equal(e[0].amount, '120000');
  assert.equal(e[0].discount, '12000');
  assert.equal(e[0].currency, 'THB');
  assert.equal(e[0].order_id, 'R-1001');
  assert.equal(e[0].idem, key, 'the attempt key reached the trail');
  assert.equal(r.dd['redemption-id'], e[0].id);

  // the next customer starts empty, with a new attempt
  await page.click('#next');
  assert.equal(await page.$eval('#code', (i) => i.value), '');
  assert.equal(await page.$eval('#result', (el) => el.hidden), true);
  noProblems(page);
  await page.close();
});

test('a double tap, or a tap after the answer, redeems once', async () => {
  const page = await open('en');
  await fill(page, '#code', 'TAPTAP1');
  await fill(page, '#amount', '500');
  // two clicks in the same task: the second finds the button busy
  await page.evaluate(() => { const b = document.querySelector('#redeem'); b.click(); b.click(); });
  await result(page, 'redeemed');
  await idle(page);
  // a tap after the answer: the same attempt, answered again
  await page.click('#redeem');
  await page.waitForFunction(() => /already made/.test(document.querySelector('#result').textContent));
  const e = (await trail(srv)).filter((x) => x.code === 'TAPTAP1');
  assert.equal(e.length, 1);
  assert.equal(Number((await codeGet('TAPTAP1')).used), 1);
  noProblems(page);
  await page.close();
});

test('an answer lost on the way: the retry sends the same key, Redis counts one', async () => {
  const page = await open('en');
  page.allowConsoleErrors = true;     // the dropped request is logged
  await fill(page, '#code', 'retry-1');
  await fill(page, '#amount', '2,000.50');
  await fill(page, '#customer', 'alice');

  // the first redeem reaches nginx and is made; its answer is dropped
  await page.setRequestInterception(true);
  let sent = null;
  const onRequest = async (req) => {
    if (req.url().endsWith('/vouchers/redeem') && !sent) {
      sent = { headers: req.headers(), body: req.postData() };
      const r = await fetch(req.url(), { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': sent.headers['idempotency-key'] }, body: sent.body });
      sent.status = r.status;
      await req.abort('connectionreset');
    } else {
      await req.continue();
    }
  };
  page.on('request', onRequest);
  await page.click('#redeem');
  await page.waitForSelector('#banner:not([hidden])');
  await idle(page);
  assert.equal(sent.status, 200, 'the first attempt was redeemed');
  const banner = await page.$eval('#banner', (b) => b.textContent);
  assert.match(banner, /not known whether the voucher was used/);
  await shot(page, 'store-lost-answer-en');
  // nothing typed is lost
  assert.equal(await page.$eval('#code', (i) => i.value), 'retry-1');
  assert.equal(await page.$eval('#amount', (i) => i.value), '2,000.50');
  assert.equal(await page.$eval('#customer', (i) => i.value), 'alice');

  // a reload keeps the entries and the attempt
  page.off('request', onRequest);
  await page.setRequestInterception(false);
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.$eval('#amount', (i) => i.value), '2,000.50');

  await page.click('#redeem');
  const r = await result(page, 'redeemed');
  assert.match(r.text, /already made/);
  const key = await page.evaluate(() => document.body.dataset.attemptKey);
  assert.equal(key, sent.headers['idempotency-key']);
  const e = (await trail(srv)).filter((x) => x.code === 'RETRY1');
  assert.equal(e.length, 1, 'one redemption');
  assert.equal(e[0].amount, '200050');
  assert.equal(e[0].customer, 'alice');
  assert.equal(Number((await codeGet('RETRY1')).used), 1);
  await page.close();
});

test('a gift card pays part of an order and shows its balance', async () => {
  const page = await open('th');
  await fill(page, '#code', 'GIFT-7Q2M-94KD');
  await fill(page, '#amount', '1200');
  await page.click('#check');
  let r = await result(page, 'valid');
  assert.match(r.text, /฿1,500\.00/, 'the balance');
  assert.equal(r.dd.discount, '฿1,200.00');
  assert.equal(r.dd['balance-after'], '฿300.00');
  assert.equal(r.dd['to-pay'], '฿0.00');
  await shot(page, 'store-giftcard-th');
  await page.click('#redeem');
  r = await result(page, 'redeemed');
  assert.equal(r.dd['balance-after'], '฿300.00');
  assert.equal(Number((await codeGet('GIFT7Q2M94KD')).balance), 30000);

  // the rest of the card pays part of the next order
  await page.click('#next');
  await fill(page, '#code', 'gift-7q2m-94kd');
  await fill(page, '#amount', '450');
  await page.click('#redeem');
  r = await result(page, 'redeemed');
  assert.equal(r.dd.discount, '฿300.00');
  assert.equal(r.dd['to-pay'], '฿150.00');
  assert.equal(r.dd['balance-after'], '฿0.00');
  assert.equal(Number((await codeGet('GIFT7Q2M94KD')).balance), 0);
  await page.click('#next');
  await fill(page, '#code', 'GIFT-7Q2M-94KD');
  await fill(page, '#amount', '100');
  await page.click('#check');
  r = await result(page, 'refused');
  assert.equal(r.reason, 'balance_exhausted');
  assert.match(r.text, /บัตรของขวัญนี้ไม่มียอดคงเหลือ/);
  noProblems(page);
  await page.close();
});

test('the engine\'s reasons in both languages, next to the field', async () => {
  const page = await open('th');
  await fill(page, '#code', 'MEMBER5');
  await fill(page, '#amount', '300');
  await page.click('#check');
  let r = await result(page, 'refused');
  assert.equal(r.reason, 'customer_required');
  assert.match(await page.$eval('#err-customer', (p) => p.textContent), /รหัสสมาชิก/);
  await shot(page, 'store-refused-th');
  await page.click('#lang');
  await result(page, 'refused');
  assert.match(await page.$eval('#result', (p) => p.textContent), /This code is for a member/);
  assert.match(await page.$eval('#err-customer', (p) => p.textContent), /This code is for a member/);
  await shot(page, 'store-refused-en');

  // fixed by typing the member: valid
  await fill(page, '#customer', 'bob');
  await page.click('#check');
  r = await result(page, 'valid');
  assert.equal(r.dd.discount, '฿50.00');

  // changing an entry drops the answer of the check
  await fill(page, '#amount', '301');
  assert.equal(await page.$eval('#result', (el) => el.hidden), true);

  // the page's own checks: nothing is sent
  await fill(page, '#amount', '12.345');
  await page.click('#check');
  assert.match(await page.$eval('#err-amount', (p) => p.textContent), /1,200\.00/);
  await fill(page, '#code', '');
  await fill(page, '#amount', '10');
  await page.click('#redeem');
  assert.match(await page.$eval('#err-code', (p) => p.textContent), /Type or scan a code/);
  noProblems(page);
  await page.close();
});

test('a campaign named like HTML is shown as text', async () => {
  const page = await open('en');
  await fill(page, '#code', 'HTMLNAME');
  await fill(page, '#amount', '100');
  await page.click('#check');
  const r = await result(page, 'valid');
  assert.match(r.text, /<img\/src=x\/onerror=alert\(1\)><script>window.__x=1<\/script>/);
  assert.equal(await page.$$eval('#result img, #result script', (x) => x.length), 0);
  assert.equal(await page.evaluate(() => window.__x), undefined);
  await shot(page, 'store-html-name-en');
  noProblems(page);
  await page.close();
});

test('a QR picture from voucherctl, fed to the photo scanner, is redeemed', async (t) => {
  const ctl = path.join(root, 'build/worker/voucherctl');
  assert.ok(existsSync(ctl), 'build/worker/voucherctl (make -C worker) draws the QR');
  const dir = mkdtempSync(path.join(tmpdir(), 'vb-qr-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const png = path.join(dir, 'photo.png');
  execFileSync(ctl, ['qr', 'PHOTO-7K3M', '--format', 'png', '--scale', '6', '--output', png]);

  const page = await open('th');
  await fill(page, '#amount', '800');
  const input = await page.$('#photo');
  await input.uploadFile(png);
  await page.waitForFunction(() => document.querySelector('#code').value === 'PHOTO-7K3M');
  assert.match(await page.$eval('#scan-note', (p) => p.textContent), /PHOTO-7K3M/);
  // a scan with an amount checks at once
  let r = await result(page, 'valid');
  assert.equal(r.dd.discount, '฿25.00');
  await shot(page, 'store-scanned-th');
  await page.click('#redeem');
  r = await result(page, 'redeemed');
  const e = (await trail(srv)).filter((x) => x.code === 'PHOTO7K3M');
  assert.equal(e.length, 1);
  assert.equal(e[0].amount, '80000');
  assert.equal(Number((await codeGet('PHOTO7K3M')).used), 1);

  // a picture with no QR code in it
  const blank = path.join(dir, 'blank.svg');
  writeFileSync(blank, '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200" fill="#fff"/></svg>');
  await (await page.$('#photo')).uploadFile(blank);
  await page.waitForFunction(() => /ไม่พบคิวอาร์โค้ด/.test(document.querySelector('#scan-note').textContent));
  noProblems(page);
  await page.close();
});

test('guessing codes: locked out after 5, with a message', async () => {
  const clear = async () => {
    for (const k of await srv.redis('KEYS', '{v}:l*')) await srv.redis('DEL', k);
  };
  await clear();
  const page = await open('en');
  await fill(page, '#amount', '100');
  for (let i = 0; i < 5; i++) {
    await fill(page, '#code', `NOPE-${i}`);
    await page.click('#check');
    const r = await result(page, 'refused');
    assert.equal(r.reason, 'not_found');
    assert.match(await page.$eval('#err-code', (p) => p.textContent), /does not exist/);
  }
  await fill(page, '#code', 'WELCOME-10');
  await page.click('#check');
  const r = await result(page, 'refused');
  assert.equal(r.reason, 'locked_out');
  assert.match(r.text, /locked for a while/);
  await shot(page, 'store-locked-en');
  await clear();
  await page.close();
});

test('Redis away: 503 with a clear message, the entries kept', async () => {
  const page = await open('en');
  await fill(page, '#code', 'WELCOME-10');
  await fill(page, '#amount', '999');
  await srv.redisStop();
  await page.click('#redeem');
  await page.waitForSelector('#banner:not([hidden])');
  await idle(page);
  assert.match(await page.$eval('#banner', (b) => b.textContent), /not available right now/);
  assert.equal(await page.$eval('#code', (i) => i.value), 'WELCOME-10');
  assert.equal(await page.$eval('#amount', (i) => i.value), '999');
  await shot(page, 'store-unavailable-en');
  await page.click('#lang');
  assert.match(await page.$eval('#banner', (b) => b.textContent), /ใช้งานไม่ได้/, 'the banner in the new language');
  await page.click('#check');
  await idle(page);
  await page.waitForFunction(() => /ใช้งานไม่ได้/.test(document.querySelector('#banner').textContent));
  await shot(page, 'store-unavailable-th');
  await srv.redisStart();
  await page.close();
});
