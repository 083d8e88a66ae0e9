// Loyalty: set up a programme from nothing (earning rule, events, tiers,
// expiry), the page's own checks and the engine's refusal next to their
// fields, nothing typed lost; what is saved is what Redis holds; a reward
// created and listed, its name as text; English and Thai, a phone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot, pairs } from './lib/harness.mjs';
import { dashboard, adminEnv, fill, text, textOnce } from './lib/admin.mjs';

const TOKEN = 'loyalty-2b7e4c9d1a6f3e58';
const env = adminEnv({ token: TOKEN });

const programme = async () => pairs(await env.srv.redis('FCALL', 'voucher_loyalty_get', 1, '{v}:lp'));

test('the programme: set from nothing, refusals next to their fields, saved as typed', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/loyalty', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('body[data-drawn="loyalty"]');
  await page.waitForSelector('#programme-form');
  assert.equal(await page.$eval('#banner', (b) => b.hidden), true, 'no programme yet is not an error');

  await page.type('#f-every', '25.00');
  await page.type('#f-points', '1');
  await page.type('#f-point_value', '0.25');
  await page.type('#f-events', 'signup:100, birthday:lots');
  await page.type('#f-expiry_months', '12');
  await page.select('#f-expiry_round', 'month');
  await fill(page, '#f-tz_offset', '+07:00');
  // tiers: base from 0, then gold below silver: the page's own check
  await page.click('#tier-add');
  await page.click('#tier-add');
  const rows = await page.$$('.tier-row');
  assert.equal(rows.length, 3);
  const set = async (row, name, th, mult) => {
    await row.$eval('.tier-name', (i, v) => { i.value = v; }, name);
    await row.$eval('.tier-threshold', (i, v) => { i.value = v; }, th);
    await row.$eval('.tier-mult', (i, v) => { i.value = v; }, mult);
  };
  await set(rows[1], 'gold', '3000', '150');
  await set(rows[2], 'silver', '1000', '100');
  await page.click('#save-programme');
  assert.match(await textOnce(page, '#err-tiers'), /start higher than the one before/);
  assert.deepEqual(await env.srv.redis('EXISTS', '{v}:lp'), 0, 'nothing sent');
  await set(rows[1], 'silver', '1000', '100');
  await set(rows[2], 'gold', '3000', '150');

  // the engine refuses the events list: its words next to the field
  await page.click('#save-programme');
  assert.match(await textOnce(page, '#err-events'), /^The server says: .*events/);
  assert.equal(await page.$eval('#f-events', (i) => i.getAttribute('aria-invalid')), 'true');
  assert.equal(await text(page, '#err-tiers'), '');
  assert.deepEqual(await env.srv.redis('EXISTS', '{v}:lp'), 0, 'refused: nothing written');
  await shot(page, 'loyalty-refused-en');

  // Thai now: what was typed and the refusal stay
  await page.click('#lang');
  await page.waitForSelector('#programme-form');
  assert.equal(await page.$eval('#f-every', (i) => i.value), '25.00');
  assert.equal(await page.$$eval('.tier-row', (r) => r.length), 3);
  assert.match(await text(page, '#err-events'), /^เซิร์ฟเวอร์แจ้งว่า: .*events/, 'the refusal in Thai too');
  await shot(page, 'loyalty-refused-th');
  await page.click('#lang');
  await page.waitForSelector('#programme-form');

  await fill(page, '#f-events', 'signup:100, birthday:200');
  await page.click('#save-programme');
  await page.waitForFunction(() => document.querySelector('#programme-saved')?.textContent === 'Saved.');
  const p = await programme();
  assert.equal(String(p.every), '2500');
  assert.equal(String(p.points), '1');
  assert.equal(String(p.point_value), '25');
  assert.equal(p.events, 'signup:100,birthday:200');
  assert.equal(p.tiers, 'base:0:100,silver:1000:100,gold:3000:150');
  assert.equal(String(p.expiry_months), '12');
  assert.equal(p.expiry_round, 'month');
  // the form shows what is stored, as the shop reads it
  assert.equal(await page.$eval('#f-every', (i) => i.value), '25.00');
  assert.equal(await page.$eval('#f-tz_offset', (i) => i.value), '+07:00');
  await shot(page, 'loyalty-en');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('rewards: one created, listed with its name as text', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/loyalty/rewards/new', { lang: 'th', width: 1280, height: 900 });
  await page.waitForSelector('#reward-form');
  await page.type('#f-id', 'latte');
  await page.type('#f-name', '<script>window.__x=1</script> ลาเต้ฟรี');
  await page.type('#f-cost', 'ten');
  await page.select('#f-kind', 'item');
  await page.type('#f-sku', 'LATTE-M');
  await page.type('#f-value', '65');
  await page.click('#save-reward');
  assert.match(await textOnce(page, '#err-cost'), /จำนวนเต็ม|whole/i);
  await fill(page, '#f-cost', '10');
  // a coupon of a campaign that does not exist: the engine's refusal there
  await page.select('#f-kind', 'coupon');
  await page.type('#f-campaign', 'nosuch');
  await page.click('#save-reward');
  assert.match(await textOnce(page, '#err-campaign'), /^เซิร์ฟเวอร์แจ้งว่า: /);
  assert.deepEqual(await env.srv.redis('EXISTS', '{v}:lw:latte'), 0);
  await page.select('#f-kind', 'item');
  await page.click('#save-reward');
  await page.waitForSelector('#rewards tr[data-id="latte"]');
  const row = await page.$eval('#rewards tr[data-id="latte"]', (tr) => ({ cells: [...tr.cells].map((c) => c.textContent), scripts: tr.querySelectorAll('script').length }));
  assert.equal(row.cells[1], '<script>window.__x=1</script> ลาเต้ฟรี');
  assert.equal(row.scripts, 0);
  assert.equal(row.cells[2], '10');
  assert.equal(row.cells[6], '฿65.00');
  assert.equal(await page.evaluate(() => window.__x), undefined);
  const w = pairs(await env.srv.redis('FCALL', 'voucher_reward_get', 1, '{v}:lw:latte'));
  assert.equal(w.kind, 'item');
  assert.equal(String(w.cost), '10');
  assert.equal(String(w.value), '6500');
  await page.waitForSelector('body[data-drawn="loyalty"]');
  await shot(page, 'loyalty-th');
  assert.deepEqual(page.problems, []);
  await page.close();

  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/loyalty', { lang: 'th', width: 390, height: 844 });
  await phone.waitForSelector('body[data-drawn="loyalty"]');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'fits a phone');
  await shot(phone, 'loyalty-phone-th');
  assert.deepEqual(phone.problems, []);
  await phone.close();
});
