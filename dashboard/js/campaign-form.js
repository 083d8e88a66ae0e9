// A campaign's form values <-> the admin API's campaign fields
// (docs/redis.md, Campaign fields).  Pure: tested in Node.
import { parseMoney, moneyField } from './money.js';
import { localToUnix, unixToLocal } from './time.js';

export const KINDS = ['percent', 'amount', 'fixed_price', 'free_item', 'gift_card',
  'steps', 'buy_x_get_y', 'free_shipping'];
export const PERIODS = ['day', 'week', 'month'];
export const MONEY_VALUE = new Set(['amount', 'fixed_price', 'gift_card']);
const LIMITS = ['max_redemptions', 'per_customer', 'per_customer_code', 'code_max_uses'];
const MONEY = ['cap', 'min_amount', 'max_discount'];
const LISTS = ['include_skus', 'exclude_skus', 'include_categories', 'exclude_categories'];

// "+07:00" <-> 420
export function offsetText(min) {
  const s = min < 0 ? '-' : '+';
  const a = Math.abs(min);
  return `${s}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

export function offsetMinutes(v) {
  if (typeof v === 'number') return v;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(String(v || ''));
  if (!m) return null;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

// "12.5" percent -> 1250 basis points; null if not 0..100 with 2 decimals
export function percentToBp(text) {
  const m = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(String(text || '').trim());
  if (!m) return null;
  const bp = Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0') || 0);
  return bp <= 10000 ? bp : null;
}

export function bpToPercent(bp) {
  const s = String(Math.floor(bp / 100));
  const f = bp % 100;
  return f ? `${s}.${String(f).padStart(2, '0').replace(/0$/, '')}` : s;
}

function intOrNull(text) {
  const s = String(text ?? '').trim();
  if (s === '') return { v: null };
  if (!/^\d{1,15}$/.test(s)) return { err: 'form.err_integer' };
  return { v: Number(s) };
}

function list(text) {
  const a = String(text || '').split(',').map((x) => x.trim()).filter(Boolean);
  return a.length ? a : null;
}

/*
 * v: the form's values (strings; days an array of '1'..'7').  Returns
 * { body, errors }: body the JSON to send (create: the fields set; edit:
 * every field, null clearing), errors { field: message key }.
 */
export function formToCampaign(v, { create }) {
  const errors = {};
  const out = {};
  const cur = (v.currency || '').trim().toUpperCase();
  const money = cur || 'THB';

  if (create) {
    if (!v.id || !v.id.trim()) errors.id = 'form.err_required';
    else if (!/^[A-Za-z0-9._-]{1,64}$/.test(v.id.trim())) errors.id = 'form.err_id';
    else out.id = v.id.trim();
  }
  out.name = (v.name || '').trim() || null;
  if (!KINDS.includes(v.kind)) errors.kind = 'form.err_required';
  else out.kind = v.kind;

  // the value, by kind
  const val = String(v.value ?? '').trim();
  if (v.kind === 'percent') {
    const bp = percentToBp(val);
    if (bp === null) errors.value = 'form.err_percent';
    else out.value = bp;
  } else if (MONEY_VALUE.has(v.kind)) {
    if (val === '' && v.kind === 'gift_card') out.value = null;
    else {
      const m = parseMoney(val, money);
      if (m === null) errors.value = 'form.err_money';
      else out.value = m;
    }
  } else if (v.kind === 'buy_x_get_y') {
    // the percent off the items got: empty is free
    if (val === '') out.value = null;
    else {
      const bp = percentToBp(val);
      if (bp === null) errors.value = 'form.err_percent';
      else out.value = bp;
    }
  } else if (v.kind === 'free_item') {
    const n = intOrNull(val === '' ? '1' : val);
    if (n.err) errors.value = n.err;
    else out.value = n.v;
    const sku = (v.free_sku || '').trim();
    if (!sku) errors.free_sku = 'form.err_free_sku';
    else out.free_sku = sku;
  }
  if (v.kind !== 'free_item') out.free_sku = null;

  for (const f of MONEY) {
    const s = String(v[f] ?? '').trim();
    if (s === '') { out[f] = null; continue; }
    const m = parseMoney(s, money);
    if (m === null) errors[f] = 'form.err_money';
    else out[f] = m;
  }
  for (const f of LIMITS) {
    const n = intOrNull(v[f]);
    if (n.err) errors[f] = n.err;
    else out[f] = n.v;
  }
  out.currency = cur || null;
  if (cur && !/^[A-Z]{3}$/.test(cur)) errors.currency = 'form.err_required';

  // when: in the campaign's own zone
  const off = offsetMinutes(v.tz_offset);
  out.tz_offset = v.tz_offset ? v.tz_offset : null;
  for (const f of ['starts_at', 'ends_at']) {
    out[f] = v[f] ? localToUnix(v[f], off ?? 0) : null;
  }
  if (out.starts_at !== null && out.ends_at !== null && out.ends_at <= out.starts_at) errors.ends_at = 'form.err_window';
  const days = [...new Set(v.days || [])].filter((d) => /^[1-7]$/.test(d)).sort();
  out.days = days.length && days.length < 7 ? days.join('') : null;
  const hf = (v.hours_from || '').trim();
  const ht = (v.hours_to || '').trim();
  if (!hf !== !ht) errors.hours = 'form.err_hours';
  out.hours = hf && ht ? `${hf}-${ht}` : null;

  for (const f of LISTS) out[f] = list(v[f]);
  rulesToCampaign(v, out, errors, money);

  // a new campaign sends what is set; an edit clears what was emptied:
  // null for the optional fields, 0 (no limit) for limits and amounts
  if (create) {
    for (const k of Object.keys(out)) if (out[k] === null) delete out[k];
  } else {
    for (const f of [...MONEY, ...LIMITS]) if (out[f] === null) out[f] = 0;
    if (out.value === null) delete out.value;
    if (v.kind !== 'buy_x_get_y') { out.buy_qty = null; out.get_qty = null; }
    if (v.kind !== 'steps') out.steps = null;
  }
  // a campaign's counters and status are not the form's
  return { body: out, errors };
}

// a campaign from the API -> the form's values
export function campaignToForm(c, { tzOffset }) {
  const v = {};
  const money = c.currency || 'THB';
  v.id = c.id || '';
  v.name = c.name || '';
  v.kind = c.kind || 'percent';
  if (c.value === undefined || c.value === null) v.value = '';
  else if (c.kind === 'percent') v.value = bpToPercent(Number(c.value));
  else if (MONEY_VALUE.has(c.kind)) v.value = moneyField(c.value, money);
  else v.value = String(c.value);
  v.free_sku = c.free_sku || '';
  for (const f of MONEY) v[f] = c[f] ? moneyField(c[f], money) : '';
  for (const f of LIMITS) v[f] = c[f] ? String(c[f]) : '';
  v.currency = c.currency || '';
  v.tz_offset = c.tz_offset === undefined || c.tz_offset === null || c.tz_offset === ''
    ? offsetText(tzOffset) : (typeof c.tz_offset === 'number' ? offsetText(c.tz_offset) : String(c.tz_offset));
  const off = offsetMinutes(v.tz_offset) ?? 0;
  v.starts_at = c.starts_at ? unixToLocal(c.starts_at, off) : '';
  v.ends_at = c.ends_at ? unixToLocal(c.ends_at, off) : '';
  v.days = c.days ? String(c.days).split('') : [];
  const hm = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(c.hours || '');
  v.hours_from = hm ? hm[1] : '';
  v.hours_to = hm ? hm[2] : '';
  for (const f of LISTS) v[f] = Array.isArray(c[f]) ? c[f].join(', ') : (c[f] || '');
  if (c.kind === 'buy_x_get_y') {
    v.value = c.value === undefined || c.value === null || Number(c.value) === 10000
      ? '' : bpToPercent(Number(c.value));
  }
  const per = (s) => /^(day|week|month):(\d+)$/.exec(s || '');
  let m = per(c.customer_uses_per);
  v.uses_period = m ? m[1] : 'day';
  v.uses_max = m ? m[2] : '';
  m = per(c.customer_amount_per);
  v.amount_period = m ? m[1] : 'month';
  v.amount_max = m ? moneyField(Number(m[2]), money) : '';
  v.customer_amount_max = c.customer_amount_max ? moneyField(c.customer_amount_max, money) : '';
  v.steps = c.steps ? String(c.steps).split(',').map((p) => p.split(':')
    .map((x) => moneyField(Number(x), money)).join(':')).join(', ') : '';
  v.buy_qty = c.buy_qty ? String(c.buy_qty) : '';
  v.get_qty = c.get_qty ? String(c.get_qty) : '';
  v.conditions = c.conditions || '';
  return v;
}

/*
 * The rules of redis/lib/rules.lua: uses and discount per customer per
 * period, the customer's total, the steps (money as the shop writes it),
 * buy x get y, conditions (as text; the engine checks them).
 */
function rulesToCampaign(v, out, errors, money) {
  const period = (p) => (PERIODS.includes(p) ? p : null);
  const uses = intOrNull(v.uses_max);
  if (uses.err || uses.v === 0) errors.uses_max = 'form.err_integer';
  else out.customer_uses_per = uses.v === null ? null : `${period(v.uses_period) || 'day'}:${uses.v}`;
  const am = String(v.amount_max ?? '').trim();
  if (am === '') out.customer_amount_per = null;
  else {
    const m = parseMoney(am, money);
    if (m === null || m === 0) errors.amount_max = 'form.err_money';
    else out.customer_amount_per = `${period(v.amount_period) || 'month'}:${m}`;
  }
  const total = String(v.customer_amount_max ?? '').trim();
  if (total === '') out.customer_amount_max = null;
  else {
    const m = parseMoney(total, money);
    if (m === null) errors.customer_amount_max = 'form.err_money';
    else out.customer_amount_max = m;
  }
  const st = String(v.steps ?? '').trim();
  if (st === '') out.steps = null;
  else {
    // "1,000:100, 2,000:250" (a comma and a space, or ";", between steps);
    // "1000:100,2000:250" too
    const pieces = st.split(/\s*;\s*|,\s+|\s+/)
      .flatMap((p) => ((p.match(/:/g) || []).length > 1 ? p.split(',') : [p]));
    const parts = pieces.map((p) => p.split(':').map((x) => parseMoney(x.trim(), money)));
    if (parts.some((p) => p.length !== 2 || p[0] === null || p[1] === null)) errors.steps = 'form.err_steps';
    else out.steps = parts.map((p) => `${p[0]}:${p[1]}`).join(',');
  }
  if (v.kind === 'steps' && st === '') errors.steps = 'form.err_steps';
  for (const f of ['buy_qty', 'get_qty']) {
    const n = intOrNull(v[f]);
    if (n.err || (v.kind === 'buy_x_get_y' && !n.v)) errors[f] = 'form.err_qty';
    else out[f] = n.v;
  }
  out.conditions = String(v.conditions ?? '').trim() || null;
}
