// The marketers' dashboard without an admin API behind nginx (voucherd
// down: nginx answers 502): the log-in, the campaign form's own checks and
// the request it builds, the messages, nothing typed lost; the screens not
// built yet, and the others saying the admin API is away; the printable voucher sheet with QR codes that decode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServers, launch, newPage, shot } from './lib/harness.mjs';

let srv;
let browser;
const TOKEN = 'ops-3f9a1c7d5e2b8a4f6c0d9e1b';

before(async () => {
  srv = await startServers();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

async function open(hash, { lang, token, width, height } = {}) {
  const page = await newPage(browser, { lang, width, height });
  page.allowConsoleErrors = false;
  if (token) {
    await page.evaluateOnNewDocument((tk) => sessionStorage.setItem('voucher.admin_token', tk), token);
  }
  await page.goto(`${srv.base}/dashboard/${hash || ''}`);
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}

async function fill(page, sel, value) {
  await page.click(sel, { clickCount: 3 });
  await page.keyboard.press('Backspace');
  if (value) await page.type(sel, value);
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

test('log in: voucherd away is said plainly, the token stays typed and nowhere else', async () => {
  const page = await open('', { lang: 'th' });
  assert.equal(await page.evaluate(() => document.body.dataset.screen), 'login');
  await shot(page, 'dashboard-login-th');
  await page.type('#token', TOKEN);
  await page.click('#login-submit');
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await text(page, '#banner'), /HTTP 502/);
  assert.match(await text(page, '#banner'), /ติดต่อ API ผู้ดูแลไม่ได้/);
  assert.equal(await page.$eval('#token', (i) => i.value), TOKEN);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('voucher.admin_token')), null);
  assert.ok(!page.url().includes(TOKEN), 'never in the URL');
  await page.click('#lang');
  assert.equal(await page.$eval('#token', (i) => i.value), TOKEN, 'kept across a change of language');
  assert.match(await text(page, '#banner'), /cannot be reached \(HTTP 502\)/);
  await shot(page, 'dashboard-login-en');
  // the request carried the token as a bearer header only
  const seen = [];
  await page.setRequestInterception(true);
  page.on('request', (r) => { seen.push({ url: r.url(), auth: r.headers().authorization }); r.continue(); });
  await page.click('#login-submit');
  await page.waitForFunction(() => !document.querySelector('#banner').hidden);
  const call = seen.find((s) => s.url.includes('/v1/campaigns'));
  assert.equal(call.auth, `Bearer ${TOKEN}`);
  assert.ok(!call.url.includes(TOKEN));
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('the campaign form: its own checks next to the fields, the request it sends, nothing lost', async () => {
  const page = await open('#/campaigns/new', { lang: 'en', token: TOKEN, width: 1280, height: 900 });
  await page.waitForSelector('#campaign-form');
  await shot(page, 'dashboard-campaign-new-en');
  await page.type('#f-id', 'weekend happy');
  await page.type('#f-name', '<script>alert("x")</script> Weekend');
  await page.select('#f-kind', 'percent');
  await page.type('#f-value', '150');
  await page.type('#f-hours_from', '1700');
  await page.click('#save');
  assert.match(await text(page, '#err-id'), /Letters, digits/);
  assert.match(await text(page, '#err-value'), /percent from 0 to 100/);
  assert.match(await text(page, '#err-hours'), /Both times, or neither/);
  assert.equal(await page.$eval('#f-value', (i) => i.getAttribute('aria-invalid')), 'true');
  await page.click('#lang');
  assert.match(await text(page, '#err-value'), /เปอร์เซ็นต์ 0 ถึง 100/, 'the checks again in Thai');
  await shot(page, 'dashboard-campaign-errors-th');
  await page.click('#lang');

  await fill(page, '#f-id', 'weekend');
  await fill(page, '#f-value', '12.5');
  await fill(page, '#f-cap', '200');
  await page.type('#f-hours_to', '1900');
  await page.click('#f-day-6');
  await page.click('#f-day-7');
  await fill(page, '#f-min_amount', '1,000');
  await fill(page, '#f-per_customer', '1');
  await fill(page, '#f-include_categories', 'tea, coffee');
  await page.$eval('#f-starts_at', (i) => { i.value = '2026-12-01T00:00'; i.dispatchEvent(new Event('input', { bubbles: true })); });
  await page.$eval('#f-ends_at', (i) => { i.value = '2026-12-31T23:59'; i.dispatchEvent(new Event('input', { bubbles: true })); });

  await page.setRequestInterception(true);
  let sent = null;
  const watch = (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/v1/campaigns')) sent = { body: JSON.parse(r.postData()), auth: r.headers().authorization };
    r.continue();
  };
  page.on('request', watch);
  await page.click('#save');
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await text(page, '#banner'), /cannot be reached \(HTTP 502\)/);
  assert.equal(sent.auth, `Bearer ${TOKEN}`);
  assert.deepEqual(sent.body, {
    id: 'weekend', name: '<script>alert("x")</script> Weekend', kind: 'percent', value: 1250, cap: 20000,
    min_amount: 100000, per_customer: 1, currency: 'THB', tz_offset: '+07:00',
    starts_at: Date.UTC(2026, 10, 30, 17, 0) / 1000, ends_at: Date.UTC(2026, 11, 31, 16, 59) / 1000,
    days: '67', hours: '17:00-19:00', include_categories: ['tea', 'coffee'],
  });
  // nothing typed is lost, across a reload too
  page.off('request', watch);
  await page.setRequestInterception(false);
  await page.reload();
  await page.waitForSelector('#campaign-form');
  assert.equal(await page.$eval('#f-value', (i) => i.value), '12.5');
  assert.equal(await page.$eval('#f-name', (i) => i.value), '<script>alert("x")</script> Weekend');
  assert.equal(await page.$eval('#f-day-7', (i) => i.checked), true);
  assert.equal(await page.$$eval('#campaign-form script', (x) => x.length), 0);
  await shot(page, 'dashboard-campaign-filled-en');
  await page.close();

  const phone = await open('#/campaigns/new', { lang: 'th', token: TOKEN });
  await phone.waitForSelector('#campaign-form');
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await phone.type('#f-name', 'ลด 10% สุดสัปดาห์');
  await phone.type('#f-value', '10');
  await shot(phone, 'dashboard-campaign-phone-th');
  await phone.close();
});

test('the campaign list says when the admin API is away, and so does every other screen', async () => {
  const page = await open('#/campaigns', { lang: 'en', token: TOKEN, width: 1280, height: 800 });
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await text(page, '#banner'), /cannot be reached/);
  // every screen over the admin API says it is away
  for (const s of ['overview', 'reports', 'loyalty', 'codes', 'members', 'segments', 'automations']) {
    await page.goto(`${srv.base}/dashboard/#/${s}`);
    await page.waitForFunction(() => /cannot be reached \(HTTP 502\)/.test(document.querySelector('#banner')?.textContent || ''));
    assert.equal(await page.$eval(`nav a[href="#/${s}"]`, (a) => a.getAttribute('aria-current')), 'page');
  }
  await shot(page, 'dashboard-waiting-en');
  // the reports screen asks the admin API for the gift cards' liability
  await page.goto(`${srv.base}/dashboard/#/reports`);
  await page.waitForSelector('#liability');
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await text(page, '#banner'), /cannot be reached/);
  await page.click('#logout');
  await page.waitForSelector('#login');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('voucher.admin_token')), null);
  await page.close();
});

test('the voucher sheet: A4 pages, N a page, QR codes that decode, text as text', async () => {
  const page = await newPage(browser, { lang: 'th', width: 1000, height: 1200 });
  await page.goto(`${srv.base}/dashboard/sheet/`);
  await page.waitForSelector('body[data-ready="1"]');
  const codes = ['GIFT-7Q2M-94KD', 'SALE-1234-ABCD', '<script>alert(1)</script>', 'BDAY-ALICE',
    'WELCOME-10', 'VIP-9X8Y', 'PIN-123456-TH', 'X-1', 'X-2', 'X-3'];
  await page.type('#codes', codes.join('\n'));
  await page.type('#heading', 'ส่วนลด 10% วันเกิด <b>ของคุณ</b>');
  await page.$eval('#expires', (i) => { i.value = '2026-12-31'; i.dispatchEvent(new Event('input', { bubbles: true })); });
  await page.select('#per-page', '8');
  await page.click('#make');
  await page.waitForSelector('body[data-made="10"]');
  assert.equal(await page.$$eval('.sheet-page', (x) => x.length), 2);
  assert.equal(await page.$$eval('.sheet-page:first-child .voucher', (x) => x.length), 8);
  assert.match(await text(page, '#count'), /10/);
  const v = await page.$$eval('.voucher', (xs) => xs.map((x) => ({
    code: x.querySelector('.vcode').textContent, heading: x.querySelector('.heading').textContent,
    expiry: x.querySelector('.expiry').textContent, tags: x.querySelectorAll('b, script').length,
  })));
  assert.deepEqual(v.map((x) => x.code), codes);
  assert.equal(v[0].heading, 'ส่วนลด 10% วันเกิด <b>ของคุณ</b>');
  assert.match(v[0].expiry, /ใช้ได้ถึง 31 ธันวาคม 2569/);
  assert.ok(v.every((x) => x.tags === 0));
  // each QR reads back as its code (the in-store page's decoder)
  await page.addScriptTag({ url: '/dashboard/vendor/jsqr/jsQR.js' });
  const read = await page.evaluate(async () => {
    const { decode } = await import('/dashboard/js/scan.js');
    const out = [];
    for (const svg of document.querySelectorAll('.voucher svg')) {
      const img = new Image();
      const xml = new XMLSerializer().serializeToString(svg).replace('<svg ', '<svg width="300" height="300" ');
      img.src = URL.createObjectURL(new Blob([xml], { type: 'image/svg+xml' }));
      await img.decode();
      out.push(await decode(img, 300, 300));
    }
    return out;
  });
  assert.deepEqual(read, codes);
  await shot(page, 'sheet-th');
  // printed: A4 pages, one after the other, no form, no shadow
  await page.emulateMediaType('print');
  const printed = await page.$$eval('.sheet-page', (ps) => ps.map((p) => {
    const st = getComputedStyle(p);
    return { w: p.getBoundingClientRect().width, brk: st.breakAfter, shadow: st.boxShadow };
  }));
  assert.equal(printed.length, 2);
  for (const p of printed) {
    assert.ok(Math.abs(p.w - 793.7) < 1, `210 mm wide (${p.w}px)`);
    assert.equal(p.brk, 'page');
    assert.equal(p.shadow, 'none');
  }
  assert.equal(await page.$eval('#sheet-form', (f) => getComputedStyle(f).display), 'none');
  await shot(page, 'sheet-print-th');
  await page.emulateMediaType(null);
  assert.deepEqual(page.problems, []);
  await page.close();
});
