// The dashboard's pure modules, in Node: the two catalogues, money, time,
// and the vendored files against the pinned npm packages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { root } from './lib/harness.mjs';
import en from '../../dashboard/i18n/en.js';
import th from '../../dashboard/i18n/th.js';
import { formatMoney, parseMoney, minorDigits, minorToDecimal, moneyField, currencySymbol } from '../../dashboard/js/money.js';
import { formatTime, zoneOffset, localToUnix, unixToLocal } from '../../dashboard/js/time.js';

const holes = (s) => [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).sort();

test('the Thai and English catalogues have the same keys and placeholders', () => {
  assert.deepEqual(Object.keys(th).sort(), Object.keys(en).sort());
  for (const k of Object.keys(en)) {
    assert.deepEqual(holes(th[k]), holes(en[k]), `placeholders of ${k}`);
    assert.ok(th[k].trim() && en[k].trim(), `${k} is not empty`);
  }
  // Thai is Thai: most messages have Thai letters
  const thai = Object.values(th).filter((s) => /[\u0e00-\u0e7f]/.test(s)).length;
  assert.ok(thai > Object.keys(th).length * 0.8, `${thai} Thai messages`);
});

test('every reason of docs/api.md has a message', () => {
  const doc = readFileSync(path.join(root, 'docs/api.md'), 'utf8');
  const reasons = new Set([...doc.matchAll(/^\| `([a-z_]+)`(?:, `[a-z_]+`)? \| (\d{3}) \|/gm)].map((m) => m[1]));
  assert.ok(reasons.size > 30, `${reasons.size} reasons read`);
  // the ones the in-store page cannot meet: rollback, reserve, gate, debug
  const elsewhere = new Set(['redemption_not_found', 'already_rolled_back', 'partial_rollback_unsupported',
    'rollback_exceeds_redemption', 'not_a_reservation', 'reservation_confirmed', 'reservation_released',
    'reservation_expired', 'reservation_rolled_back', 'invalid_json', 'duplicate_field', 'invalid_request',
    'method_not_allowed', 'unsupported_media_type', 'code_malformed']);
  for (const r of reasons) {
    if (elsewhere.has(r)) continue;
    assert.ok(`reason.${r}` in en, `reason.${r}`);
  }
});

test('money as the shop reads it', () => {
  assert.equal(formatMoney(120000, 'THB', 'en'), '฿1,200.00');
  assert.equal(formatMoney(120000, 'THB', 'th-TH'), '฿1,200.00');
  assert.equal(formatMoney(120000, 'CNY', 'en'), '¥1,200.00');
  assert.equal(formatMoney(1200, 'JPY', 'en'), '¥1,200');
  assert.equal(formatMoney(5, 'THB', 'en'), '฿0.05');
  assert.equal(formatMoney(0, 'THB', 'en'), '฿0.00');
  assert.match(formatMoney(1234567, 'BHD', 'en'), /1,234\.567$/);
  // no floating point: 2^53-1 satang exactly
  assert.equal(formatMoney(9007199254740991, 'THB', 'en'), '฿90,071,992,547,409.91');
  assert.equal(minorDigits('THB'), 2);
  assert.equal(minorDigits('JPY'), 0);
  assert.equal(minorToDecimal(-5, 2), '-0.05');
  assert.equal(moneyField(120050, 'THB'), '1200.50');
  assert.equal(currencySymbol('THB', 'th-TH'), '฿');
});

test('amounts typed by staff', () => {
  const cases = [
    ['1200', 120000], ['1,200', 120000], ['1,200.5', 120050], ['1,200.50', 120050],
    [' ฿ 1,200.00 ', 120000], ['0', 0], ['0.01', 1], ['.5', null], ['1,20', null],
    ['12.345', null], ['-5', null], ['฿-5', null], ['THB 12', 1200], ['$5', 500], ['1e3', null], ['', null], ['abc', null],
    ['90071992547409.91', 9007199254740991], ['90071992547409.92', null],
  ];
  for (const [text, want] of cases) assert.equal(parseMoney(text, 'THB'), want, JSON.stringify(text));
  assert.equal(parseMoney('1,200', 'JPY'), 1200);
  assert.equal(parseMoney('1.5', 'JPY'), null);
});

test('times in the shop\'s zone', () => {
  // 2026-01-01 00:00 in Bangkok is 2025-12-31 17:00 UTC
  const t0 = Date.UTC(2025, 11, 31, 17, 0) / 1000;
  assert.match(formatTime(t0, 'Asia/Bangkok', 'en-GB'), /1 Jan 2026, 00:00/);
  assert.match(formatTime(t0, 'UTC', 'en-GB'), /31 Dec 2025, 17:00/);
  // Thai dates count Buddhist years
  assert.match(formatTime(t0, 'Asia/Bangkok', 'th-TH'), /2569/);
  assert.equal(zoneOffset('Asia/Bangkok', t0), 420);
  assert.equal(zoneOffset('America/New_York', t0), -300);
  assert.equal(localToUnix('2026-01-01T00:00', 420), t0);
  assert.equal(unixToLocal(t0, 420), '2026-01-01T00:00');
  assert.equal(localToUnix('2026-13-01', 420), null);
  assert.equal(localToUnix('2026-02-30T00:00', 420), null);
  assert.equal(unixToLocal(t0 + 7, 420), '2026-01-01T00:00:07');
  assert.equal(localToUnix('2026-01-01T00:00:07', 420), t0 + 7);
});

test('dashboard/vendor/ is the pinned npm packages, byte for byte', () => {
  const nm = path.join(root, 't/browser/node_modules');
  const lock = JSON.parse(readFileSync(path.join(root, 't/browser/package-lock.json'), 'utf8'));
  const pairsOf = [
    ['jsqr/dist/jsQR.js', 'jsqr/jsQR.js'], ['jsqr/LICENSE', 'jsqr/LICENSE'],
    ['qrcode-generator/dist/qrcode.mjs', 'qrcode-generator/qrcode.mjs'],
    ['uplot/dist/uPlot.esm.js', 'uplot/uPlot.esm.js'], ['uplot/dist/uPlot.min.css', 'uplot/uPlot.min.css'],
    ['uplot/LICENSE', 'uplot/LICENSE'],
  ];
  for (const [from, to] of pairsOf) {
    assert.ok(readFileSync(path.join(nm, from)).equals(readFileSync(path.join(root, 'dashboard/vendor', to))), to);
  }
  const readme = readFileSync(path.join(root, 'dashboard/vendor/README.md'), 'utf8');
  for (const name of ['jsqr', 'qrcode-generator', 'uplot']) {
    const v = lock.packages[`node_modules/${name}`].version;
    assert.match(readme, new RegExp(`\`${name}\` ${v.replace(/\./g, '\\.')}`), `vendor/README.md names ${name} ${v}`);
  }
  // every vendored library has its licence
  for (const d of readdirSync(path.join(root, 'dashboard/vendor'))) {
    if (statSync(path.join(root, 'dashboard/vendor', d)).isDirectory()) {
      assert.ok(statSync(path.join(root, 'dashboard/vendor', d, 'LICENSE')).size > 500, `${d}/LICENSE`);
    }
  }
});

test('the campaign form\'s values and the API\'s campaign fields', async () => {
  const { formToCampaign, campaignToForm, percentToBp, bpToPercent, offsetMinutes } = await import('../../dashboard/js/campaign-form.js');
  assert.equal(percentToBp('10'), 1000);
  assert.equal(percentToBp('12.5'), 1250);
  assert.equal(percentToBp('0.01'), 1);
  assert.equal(percentToBp('100'), 10000);
  assert.equal(percentToBp('100.01'), null);
  assert.equal(percentToBp('1.234'), null);
  assert.equal(bpToPercent(1250), '12.5');
  assert.equal(bpToPercent(1205), '12.05');
  assert.equal(offsetMinutes('-05:30'), -330);

  const base = { id: 'gift', kind: 'gift_card', value: '500', currency: 'thb', tz_offset: '+07:00', days: [] };
  let r = formToCampaign(base, { create: true });
  assert.deepEqual(r.errors, {});
  assert.deepEqual(r.body, { id: 'gift', kind: 'gift_card', value: 50000, currency: 'THB', tz_offset: '+07:00' });

  // an edit sends every field, null clearing the emptied ones
  r = formToCampaign({ ...base, value: '', cap: '', days: ['1', '2', '3', '4', '5', '6', '7'] }, { create: false });
  assert.ok(!('value' in r.body), 'a gift card\'s default value left as it is');
  assert.equal(r.body.cap, 0, 'an emptied limit is 0: no limit');
  assert.equal(r.body.per_customer_code, 0);
  assert.equal(r.body.name, null);
  assert.equal(r.body.days, null, 'every day is no day rule');
  assert.equal(r.body.hours, null);
  assert.equal(r.body.include_skus, null);
  assert.ok(!('id' in r.body));

  r = formToCampaign({ id: 'free', kind: 'free_item', value: '', free_sku: '', days: [] }, { create: true });
  assert.deepEqual(r.errors, { free_sku: 'form.err_free_sku' });
  r = formToCampaign({ id: 'x y', kind: 'amount', value: '1,00', max_redemptions: '-1', hours_to: '10:00',
    starts_at: '2026-02-01T00:00', ends_at: '2026-01-01T00:00', tz_offset: '+07:00', days: [] }, { create: true });
  assert.deepEqual(r.errors, { id: 'form.err_id', value: 'form.err_money', max_redemptions: 'form.err_integer',
    hours: 'form.err_hours', ends_at: 'form.err_window' });

  // and back: the API's campaign as the form shows it
  const c = { id: 'weekend', name: 'Weekend', kind: 'percent', value: 1250, cap: 20000, min_amount: 100000,
    currency: 'THB', tz_offset: 420, days: '67', hours: '17:00-19:00', starts_at: 1795000000,
    include_categories: ['tea', 'coffee'], per_customer: 1 };
  const v = campaignToForm(c, { tzOffset: 420 });
  assert.equal(v.value, '12.5');
  assert.equal(v.cap, '200.00');
  assert.equal(v.tz_offset, '+07:00');
  assert.deepEqual(v.days, ['6', '7']);
  assert.equal(v.hours_from, '17:00');
  assert.equal(v.include_categories, 'tea, coffee');
  const back = formToCampaign(v, { create: false }).body;
  for (const k of ['kind', 'value', 'cap', 'min_amount', 'currency', 'days', 'hours', 'starts_at', 'per_customer', 'include_categories']) {
    assert.deepEqual(back[k], c[k], k);
  }

  // the rules: periods, the customer's total, steps in money, buy x get y
  r = formToCampaign({ id: 'mj', kind: 'steps', steps: '1,000:100, 2,000:250', currency: 'THB',
    uses_max: '1', uses_period: 'day', amount_max: '500', amount_period: 'month',
    customer_amount_max: '1,500', conditions: ' order.channel in shop,line_man ', days: [] }, { create: true });
  assert.deepEqual(r.errors, {});
  assert.deepEqual([r.body.steps, r.body.customer_uses_per, r.body.customer_amount_per,
    r.body.customer_amount_max, r.body.conditions],
  ['100000:10000,200000:25000', 'day:1', 'month:50000', 150000, 'order.channel in shop,line_man']);
  const rv = campaignToForm({ ...r.body, id: 'mj' }, { tzOffset: 420 });
  assert.deepEqual([rv.steps, rv.uses_max, rv.uses_period, rv.amount_max, rv.amount_period],
    ['1000.00:100.00, 2000.00:250.00', '1', 'day', '500.00', 'month']);
  assert.equal(formToCampaign({ ...rv, kind: 'steps' }, { create: false }).body.steps, '100000:10000,200000:25000');
  r = formToCampaign({ id: 'b', kind: 'buy_x_get_y', buy_qty: '2', get_qty: '', value: '', steps: 'x', days: [] }, { create: true });
  assert.deepEqual(r.errors, { get_qty: 'form.err_qty', steps: 'form.err_steps' });
  r = formToCampaign({ id: 'b', kind: 'buy_x_get_y', buy_qty: '2', get_qty: '1', value: '50', days: [] }, { create: true });
  assert.deepEqual([r.body.value, r.body.buy_qty, r.body.get_qty], [5000, 2, 1]);
  r = formToCampaign({ id: 'p', kind: 'amount', value: '10', uses_max: '0', amount_max: '0', days: [] }, { create: true });
  assert.deepEqual(r.errors, { uses_max: 'form.err_integer', amount_max: 'form.err_money' });
});
