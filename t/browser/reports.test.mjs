// Reports: a campaign's send history and funnel (sent, came back and
// redeemed through nginx, one never reached, a member named <script>), its
// runs and ROI; the loyalty report from real ledgers; the place kept for
// the gift-card liability; English and Thai, a phone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newPage, shot } from './lib/harness.mjs';
import { dashboard, admin, adminEnv } from './lib/admin.mjs';

const TOKEN = 'reports-8d2f6b1a9c3e5e71';
const env = adminEnv({ token: TOKEN });

const EVIL = '<script>window.__x=1</script>';

test('a campaign\'s funnel, runs and recipients; the loyalty report', async (t) => {
  if (env.skipped(t)) return;
  await admin(env.srv, TOKEN, 'POST', 'campaigns', { id: 'birthday', name: 'Birthday ฿100', kind: 'amount', value: 10000,
    currency: 'THB', tz_offset: '+07:00' });
  for (const [code, customer] of [['BDAY-ALICE', 'alice'], ['BDAY-EVIL', EVIL], ['BDAY-DAVE', 'dave']]) {
    await admin(env.srv, TOKEN, 'POST', 'codes', { code, campaign: 'birthday', customer });
  }
  const now = Math.floor(Date.now() / 1000);
  const dl = (member, status, code, extra = []) => env.srv.redis('XADD', '{v}:dl:birthday', '*', 'run', 'm' + now,
    'member', member, 'status', status, 'channel', 'line', 'code', code, 'attempt', 1, 'at', now, ...extra);
  await dl('alice', 'sent', 'BDAYALICE');
  await dl(EVIL, 'sent', 'BDAYEVIL');
  await dl('dave', 'dead', 'BDAYDAVE', ['error', 'line: blocked']);
  // alice comes back and redeems through nginx
  const r = await fetch(`${env.srv.base}/vouchers/redeem`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'rep-1' },
    body: JSON.stringify({ code: 'BDAY-ALICE', customer: 'alice', order: { amount: 150000, currency: 'THB' } }),
  });
  assert.equal(r.status, 200, await r.text());

  // a programme and two members' ledgers
  const fc = (...a) => env.srv.redis('FCALL', ...a);
  assert.equal(await fc('voucher_loyalty_set', 1, '{v}:lp', 'every', 100, 'points', 1,
    'tiers', 'base:0:100,gold:1000:150'), 'OK');
  await fc('voucher_loyalty_earn', 1, '{v}:lm:alice', 'o-1', 150000, 0);
  await fc('voucher_loyalty_earn', 1, '{v}:lm:bob', 'o-2', 30000, 0);
  await fc('voucher_loyalty_spend', 1, '{v}:lm:bob', 100, 's-1');

  const page = await dashboard(env.browser, env.srv, TOKEN, '#/reports', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('body[data-drawn="reports"]');
  assert.match(await page.$eval('#report-body', (e) => e.textContent), /Pick a campaign/);
  assert.match(await page.$eval('#giftcard-liability', (e) => e.textContent), /Gift cards/);
  await page.select('#r-campaign', 'birthday');
  await page.click('#report-form button[type="submit"]');
  await page.waitForSelector('#campaign-report[data-campaign="birthday"]');
  await page.waitForSelector('body[data-drawn="reports"]');

  const funnel = await page.$$eval('#funnel .funnel-row', (rs) => rs.map((x) => [x.dataset.step, x.querySelector('.funnel-value').textContent]));
  assert.deepEqual(funnel, [['issued', '3'], ['delivered', '2'], ['came_back', '1'], ['redemptions', '1']]);
  assert.equal(await page.$eval('#r-discount', (e) => e.textContent), '฿100.00');
  assert.equal(await page.$eval('#r-revenue', (e) => e.textContent), '฿1,500.00');
  assert.equal(await page.$eval('#r-roi', (e) => e.textContent), '14.00');
  assert.equal(await page.$eval('#r-back-rate', (e) => e.textContent), '50.0%');
  assert.equal(await page.$eval('#r-failed', (e) => e.textContent), '1');
  const runs = await page.$$eval('#runs tbody tr', (rs) => rs.map((x) => [...x.cells].map((c) => c.textContent)));
  assert.equal(runs.length, 1);
  assert.deepEqual(runs[0].slice(1, 4), ['2', '0', '1'], 'one run: two sent, one given up');
  const people = await page.$$eval('#recipients tbody tr', (rs) => rs.map((x) => [...x.cells].map((c) => c.textContent)));
  const alice = people.find((p) => p[0] === 'alice');
  assert.deepEqual([alice[1], alice[2], alice[3], alice[5], alice[6], alice[7]], ['Sent', 'line', 'BDAYALICE', '1', '฿100.00', '฿1,500.00']);
  assert.equal(people.find((p) => p[0] === 'dave')[1], 'Gave up');
  // a member named <script> is text
  assert.ok(people.some((p) => p[0] === EVIL), 'the name as its characters');
  assert.equal(await page.$$eval('#recipients script', (s) => s.length), 0);
  assert.equal(await page.evaluate(() => window.__x), undefined);

  // the loyalty report
  const fig = (id) => page.$eval(id, (e) => e.textContent);
  assert.equal(await fig('#l-earned'), '1,800');
  assert.equal(await fig('#l-spent'), '100');
  assert.equal(await fig('#l-active'), '1,700');
  assert.equal(await fig('#l-members'), '2');
  const tiers = await page.$$eval('#tiers tbody tr', (rs) => rs.map((x) => [...x.cells].map((c) => c.textContent)));
  assert.deepEqual(tiers, [['base', '1'], ['gold', '1']]);
  await shot(page, 'reports-en');

  await page.click('#lang');
  await page.waitForSelector('#campaign-report');
  await page.waitForFunction(() => /ส่งแล้วกลับมาใช้/.test(document.querySelector('#campaign-report').textContent));
  assert.equal(await fig('#r-revenue'), '฿1,500.00');
  await shot(page, 'reports-th');
  assert.deepEqual(page.problems, []);
  await page.close();

  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/reports/birthday', { lang: 'th', width: 390, height: 844 });
  await phone.waitForSelector('#campaign-report');
  await phone.waitForSelector('body[data-drawn="reports"]');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'fits a phone');
  await shot(phone, 'reports-phone-th');
  assert.deepEqual(phone.problems, []);
  await phone.close();
});

test('printing: the sheet\'s QR codes and barcodes from the admin API, the token in a header only', async (t) => {
  if (env.skipped(t)) return;
  const page = await newPage(env.browser, { lang: 'en', width: 1000, height: 1200 });
  await page.evaluateOnNewDocument((tk) => sessionStorage.setItem('voucher.admin_token', tk), TOKEN);
  // config.json as a shop would set it
  await page.setRequestInterception(true);
  const seen = [];
  page.on('request', (r) => {
    seen.push({ url: r.url(), auth: r.headers().authorization });
    if (r.url().endsWith('/dashboard/config.json')) {
      r.respond({ status: 200, contentType: 'application/json',
        body: JSON.stringify({ qr_url: '/v1/qr?text={text}', barcode_url: '/v1/barcode?text={text}&scale=2' }) });
    } else {
      r.continue();
    }
  });
  await page.goto(`${env.srv.base}/dashboard/sheet/`);
  await page.waitForSelector('body[data-ready="1"]');
  const codes = ['GIFT-7Q2M-94KD', 'บัตร-1'];
  await page.type('#codes', codes.join('\n'));
  await page.click('#make');
  await page.waitForSelector('body[data-made="2"]');
  assert.equal(await page.$eval('#banner', (b) => b.hidden), true);
  // the QR pictures are the API's, and read back as their codes
  await page.addScriptTag({ url: '/dashboard/vendor/jsqr/jsQR.js' });
  const read = await page.evaluate(async () => {
    const { decode } = await import('/dashboard/js/scan.js');
    const out = [];
    for (const img of document.querySelectorAll('.voucher .qr img')) out.push(await decode(img, img.naturalWidth, img.naturalHeight));
    return out;
  });
  assert.deepEqual(read, codes);
  // a barcode for the ASCII code only: 16 symbols of 11 modules, the stop's
  // 13 and two quiet zones of 10, at 2 pixels a module
  const bars = await page.$$eval('.voucher', (vs) => vs.map((v) => {
    const img = v.querySelector('.barcode img');
    return img ? [img.naturalWidth, img.src.slice(0, 5)] : null;
  }));
  assert.deepEqual(bars, [[(16 * 11 + 13 + 20) * 2, 'blob:'], null]);
  const calls = seen.filter((s) => s.url.includes('/v1/'));
  assert.equal(calls.length, 3);
  assert.ok(calls.every((c) => c.auth === `Bearer ${TOKEN}` && !c.url.includes(TOKEN)), 'the token in a header, never in a URL');
  await shot(page, 'sheet-barcode-en');
  assert.deepEqual(page.problems, []);
  await page.close();
});
