// The in-store redemption page: staff scan or type a code, see what it
// gives for the amount (validate), and redeem it (redeem) through the
// edge API.  One idempotency key per attempt (the same entries, until the
// next customer): a double tap, a tap after the answer or a retry after a
// lost answer sends the same key, so Redis counts it once.
import { initLang, setLang, getLang, t, locale, applyI18n, onLang } from './i18n.js';
import { loadConfig } from './config.js';
import { formatMoney, parseMoney, currencySymbol } from './money.js';
import { formatTime } from './time.js';
import { edgePost, reasonText, newKey, NetError } from './edge.js';
import { decodeFile, startCamera, codeFromText, decoderName } from './scan.js';
import { h, clear, $ } from './dom.js';

const SAVE = 'voucher.store.form';
const PENDING = 'voucher.store.pending';
const FIELDS = ['code', 'amount', 'customer', 'order'];

let cfg;
let busy = false;
let stopCamera = null;
let last = null;            // { kind: 'check'|'redeem', body, replayed, code, fp }

const store = {
  get(k) { try { return JSON.parse(sessionStorage.getItem(k)); } catch { return null; } },
  set(k, v) { try { sessionStorage.setItem(k, JSON.stringify(v)); } catch { /* full */ } },
  del(k) { try { sessionStorage.removeItem(k); } catch { /* none */ } },
};

function values() {
  const v = {};
  for (const f of FIELDS) v[f] = $('#' + f).value.trim();
  return v;
}

// what makes two attempts the same attempt
function fingerprint(v, amount) {
  return JSON.stringify([v.code.toUpperCase().replace(/[\s-]/g, ''), amount,
    v.customer, v.order]);
}

// messages are kept as functions, so a change of language rewrites them
const said = { fields: {}, banner: null };

function fieldError(name, make) {
  said.fields[name] = make || null;
  const text = make ? make() : '';
  const p = $('#err-' + name);
  if (p) p.textContent = text;
  const input = $('#' + name);
  if (input) {
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

function banner(make) {
  said.banner = make || null;
  const b = $('#banner');
  b.textContent = make ? make() : '';
  b.hidden = !make;
}

function retell() {
  for (const [name, make] of Object.entries(said.fields)) fieldError(name, make);
  banner(said.banner);
}

// the entries, checked here before anything is sent
function readForm() {
  const v = values();
  let ok = true;
  fieldError('code');
  fieldError('amount');
  fieldError('customer');
  if (!v.code) {
    fieldError('code', () => t('store.code_required'));
    ok = false;
  }
  let amount = null;
  if (!v.amount) {
    fieldError('amount', () => t('store.amount_required'));
    ok = false;
  } else {
    amount = parseMoney(v.amount, cfg.currency);
    if (amount === null) {
      fieldError('amount', () => t('store.amount_invalid'));
      ok = false;
    }
  }
  if (!ok) return null;
  const body = { code: v.code, order: { amount, currency: cfg.currency } };
  if (v.customer) body.customer = v.customer;
  if (v.order) body.order.id = v.order;
  return { v, body, fp: fingerprint(v, amount) };
}

function setBusy(on, button, label) {
  busy = on;
  for (const b of [$('#check'), $('#redeem')]) b.disabled = on;
  if (on) {
    button.dataset.i18n = label;
  } else {
    $('#check').dataset.i18n = 'store.check';
    $('#redeem').dataset.i18n = 'store.redeem';
  }
  applyI18n($('#redeem-form'));
  document.body.dataset.busy = on ? '1' : '';
}

function money(v) { return formatMoney(v, cfg.currency, locale()); }

function row(label, value, cls) {
  return [h('dt', { text: t(label) }), h('dd', { class: cls, text: value })];
}

// the answer of the last check or redeem, in the page's language
function render() {
  const el = $('#result');
  clear(el);
  if (!last) { el.hidden = true; return; }
  el.hidden = false;
  const b = last.body;
  const okKey = last.kind === 'redeem' ? 'redeemed' : 'valid';
  const ok = b[okKey] === true;
  el.className = 'result ' + (ok ? (last.kind === 'redeem' ? 'done' : 'ok') : 'refused');
  el.dataset.state = ok ? okKey : 'refused';
  el.dataset.reason = ok ? '' : (b.reason || '');

  const title = ok ? t(last.kind === 'redeem' ? 'store.redeemed' : 'store.valid') : t('store.invalid');
  el.append(h('h2', { text: title }));
  el.append(h('p', { class: 'code-shown', text: last.code }));

  if (!ok) {
    el.append(h('p', { class: 'reason', text: reasonText(b, cfg.currency, locale()) }));
    return;
  }

  const dl = h('dl');
  if (b.campaign) dl.append(...row('store.campaign', b.campaign));
  const gift = b.computation && b.computation.kind === 'gift_card';
  if (gift) {
    // validate answers the balance now, redeem the balance after
    const before = last.kind === 'redeem' ? b.balance + b.discount : b.balance;
    if (before !== undefined && !Number.isNaN(before)) dl.append(...row('store.balance', money(before)));
    dl.append(...row('store.card_pays', money(b.discount), 'discount'));
    dl.append(...row('store.to_pay', money(b.amount_after), 'to-pay'));
    if (before !== undefined) dl.append(...row('store.balance_after', money(before - b.discount), 'balance-after'));
  } else {
    dl.append(...row('store.order_amount', money(b.order_amount)));
    dl.append(...row('store.discount', money(b.discount), 'discount'));
    dl.append(...row('store.to_pay', money(b.amount_after), 'to-pay'));
  }
  if (b.uses_left !== undefined) dl.append(...row('store.uses_left', String(b.uses_left)));
  if (b.expires_at !== undefined) dl.append(...row('store.expires', formatTime(b.expires_at, cfg.time_zone, locale())));
  if (b.redemption_id) dl.append(...row('store.redemption_id', b.redemption_id, 'redemption-id'));
  el.append(dl);
  if (last.replayed) el.append(h('p', { class: 'hint', text: t('store.replayed') }));
  if (last.kind === 'redeem') {
    el.append(h('button', { type: 'button', id: 'next', class: 'primary big', text: t('store.next'), onclick: nextCustomer }));
  }
}

function failure(err, unknownOutcome) {
  if (err instanceof NetError && err.kind === 'offline') {
    banner(() => t(unknownOutcome ? 'net.unknown_outcome' : 'net.offline'));
  } else if (err instanceof NetError) {
    banner(() => (err.status >= 500 ? t(unknownOutcome ? 'net.unknown_outcome' : 'net.unavailable')
      : t('net.bad_answer', { status: err.status })));
  } else {
    banner(() => t('net.offline'));
  }
}

// a refusal about a field is shown next to that field too
function showRefusal(b) {
  if (b.reason === 'customer_required' || b.reason === 'customer_mismatch') {
    fieldError('customer', () => reasonText(b, cfg.currency, locale()));
  } else if (b.field === 'order.amount' || b.reason === 'order_below_minimum') {
    fieldError('amount', () => reasonText(b, cfg.currency, locale()));
  } else if (['not_found', 'invalid_code', 'code_inactive', 'expired', 'code_exhausted'].includes(b.reason)) {
    fieldError('code', () => reasonText(b, cfg.currency, locale()));
  }
}

async function check() {
  if (busy) return;
  const f = readForm();
  if (!f) return;
  banner();
  setBusy(true, $('#check'), 'store.checking');
  try {
    const r = await edgePost(cfg.edge_api, 'validate', f.body);
    if (r.status >= 500) {
      banner(() => reasonText(r.body, cfg.currency, locale()));
      return;
    }
    last = { kind: 'check', body: r.body, code: f.v.code, fp: f.fp };
    if (r.body.valid !== true) showRefusal(r.body);
    render();
    $('#result').scrollIntoView({ block: 'nearest' });
  } catch (e) {
    failure(e, false);
  } finally {
    setBusy(false);
  }
}

async function redeem(ev) {
  if (ev) ev.preventDefault();
  if (busy) return;
  const f = readForm();
  if (!f) return;
  banner();
  // the same entries as an attempt whose outcome is unknown: the same key
  let p = store.get(PENDING);
  if (!p || p.fp !== f.fp) {
    p = { fp: f.fp, key: newKey() };
    store.set(PENDING, p);
  }
  document.body.dataset.attemptKey = p.key;
  setBusy(true, $('#redeem'), 'store.redeeming');
  try {
    const r = await edgePost(cfg.edge_api, 'redeem', f.body, { key: p.key });
    if (r.status >= 500) {
      // store_timeout, or the connection broke in flight: unknown outcome
      banner(() => reasonText(r.body, cfg.currency, locale()));
      return;
    }
    // the attempt keeps its key until the entries change or the next
    // customer: a tap after the answer gets the same answer again
    last = { kind: 'redeem', body: r.body, code: f.v.code, fp: f.fp, replayed: r.replayed };
    if (r.body.redeemed !== true) showRefusal(r.body);
    render();
    $('#result').scrollIntoView({ block: 'nearest' });
    if (r.body.redeemed === true) $('#next').focus({ preventScroll: true });
  } catch (e) {
    failure(e, true);
  } finally {
    setBusy(false);
  }
}

function nextCustomer() {
  for (const f of FIELDS) $('#' + f).value = '';
  store.del(SAVE);
  store.del(PENDING);
  last = null;
  render();
  banner();
  $('#scan-note').textContent = '';
  $('#code').focus();
}

function save() {
  store.set(SAVE, values());
  // a check answers for the entries it was made with
  if (last && last.kind === 'check') {
    const v = values();
    const amount = parseMoney(v.amount, cfg.currency);
    if (fingerprint(v, amount) !== last.fp) {
      last = null;
      render();
    }
  }
}

function restore() {
  const v = store.get(SAVE);
  if (!v) return;
  for (const f of FIELDS) if (typeof v[f] === 'string') $('#' + f).value = v[f];
}

function scanned(text) {
  const code = codeFromText(text);
  $('#code').value = code;
  $('#scan-note').textContent = t('store.scanned', { code });
  fieldError('code');
  save();
  if ($('#amount').value.trim()) check();
  else $('#amount').focus();
}

async function camera() {
  if (stopCamera) return;
  $('#scan-note').textContent = '';
  try {
    $('#camera').hidden = false;
    stopCamera = await startCamera($('#video'), (text) => {
      stopCamera = null;
      $('#camera').hidden = true;
      scanned(text);
    });
  } catch (e) {
    stopCamera = null;
    $('#camera').hidden = true;
    $('#scan-note').textContent = t('store.scan_nocamera', { why: e && e.name ? e.name : 'error' });
  }
}

async function photo() {
  const file = $('#photo').files[0];
  $('#photo').value = '';
  if (!file) return;
  $('#scan-note').textContent = '';
  let text = null;
  try { text = await decodeFile(file); } catch { text = null; }
  if (text) scanned(text);
  else $('#scan-note').textContent = t('store.scan_none');
}

function amountLabel() {
  $('#amount-label').dataset.i18nVars = JSON.stringify({ symbol: currencySymbol(cfg.currency, locale()) });
}

async function main() {
  cfg = await loadConfig(new URL('../', import.meta.url));
  initLang(cfg.language);
  amountLabel();
  applyI18n(document);
  restore();
  document.body.dataset.decoder = await decoderName();

  $('#lang').addEventListener('click', () => setLang(getLang() === 'th' ? 'en' : 'th'));
  onLang(() => { amountLabel(); applyI18n(document); render(); retell(); });
  $('#redeem-form').addEventListener('submit', redeem);
  $('#check').addEventListener('click', check);
  $('#scan').addEventListener('click', camera);
  $('#scan-stop').addEventListener('click', () => {
    if (stopCamera) stopCamera();
    stopCamera = null;
    $('#camera').hidden = true;
  });
  $('#photo').addEventListener('change', photo);
  for (const f of FIELDS) $('#' + f).addEventListener('input', save);
  document.body.dataset.ready = '1';
}

main();
