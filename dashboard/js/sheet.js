// The printable voucher sheet: N vouchers on each A4 page, each with its
// QR code, its code as sent, the campaign's text and the expiry.  The QR
// comes from a source: drawn here (the vendored qrcode-generator), or the
// admin API's SVG when config.json's qr_url names it; with barcode_url, a
// Code 128 barcode from the admin API goes under the code too.
import { initLang, setLang, getLang, t, locale, applyI18n, onLang } from './i18n.js';
import { loadConfig } from './config.js';
import { getToken } from './admin.js';
import { h, clear, $ } from './dom.js';
import qrcode from '../vendor/qrcode-generator/qrcode.mjs';

const SVG = 'http://www.w3.org/2000/svg';
const SAVE = 'voucher.sheet.form';
let cfg;

// a QR code as an <svg> element, built node by node
function localQr(text) {
  const q = qrcode(0, 'M');
  // the generator takes one byte a character: the text's UTF-8 bytes
  q.addData(String.fromCharCode(...new TextEncoder().encode(text)), 'Byte');
  q.make();
  const n = q.getModuleCount();
  const m = 4;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${n + 2 * m} ${n + 2 * m}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', text);
  const bg = document.createElementNS(SVG, 'rect');
  bg.setAttribute('width', String(n + 2 * m));
  bg.setAttribute('height', String(n + 2 * m));
  bg.setAttribute('fill', '#fff');
  svg.append(bg);
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n;) {
      if (!q.isDark(r, c)) { c++; continue; }
      let run = 0;
      while (c + run < n && q.isDark(r, c + run)) run++;
      d += `M${c + m} ${r + m}h${run}v1h-${run}z`;
      c += run;
    }
  }
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(path);
  return svg;
}

// the admin API's picture, as an <img> of a blob (the token goes in a
// header, never in the image's URL)
async function apiPicture(template, text) {
  const url = template.replace('{text}', encodeURIComponent(text));
  const r = await fetch(url, { headers: { Authorization: 'Bearer ' + getToken() }, cache: 'no-store' });
  if (!r.ok) throw new Error('HTTP ' + r.status);
  const img = new Image();
  img.alt = text;
  img.src = URL.createObjectURL(await r.blob());
  await img.decode().catch(() => {});
  return img;
}

const apiQr = (text) => apiPicture(cfg.qr_url, text);

// a barcode, or nothing for a code Code 128 cannot hold (not ASCII)
async function barcode(text) {
  if (!cfg.barcode_url || !/^[\x20-\x7e]{1,80}$/.test(text)) return null;
  try {
    return h('div', { class: 'barcode' }, await apiPicture(cfg.barcode_url, text));
  } catch {
    return null;
  }
}

export const sources = { local: async (text) => localQr(text), api: apiQr };

function layout(per) {
  const cols = 2;
  return { cols, rows: Math.ceil(per / cols) };
}

async function make(ev) {
  if (ev) ev.preventDefault();
  const lines = $('#codes').value.split('\n').map((s) => s.trim());
  const codes = [];
  $('#err-codes').textContent = '';
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]) continue;
    if (lines[i].length > 512) {
      $('#err-codes').textContent = t('sheet.too_long', { line: i + 1 });
      return;
    }
    codes.push(lines[i]);
  }
  if (!codes.length) {
    $('#err-codes').textContent = t('form.err_required');
    return;
  }
  const per = Number($('#per-page').value);
  const { cols, rows } = layout(per);
  const heading = $('#heading').value.trim();
  const exp = $('#expires').value;
  const expText = exp ? new Intl.DateTimeFormat(locale(), { dateStyle: 'long', timeZone: 'UTC' })
    .format(new Date(exp + 'T00:00:00Z')) : '';
  const source = cfg.qr_url ? sources.api : sources.local;
  const pages = $('#pages');
  clear(pages);
  $('#banner').hidden = true;
  // the QR leaves the text about 50 mm of a voucher's 93 mm
  const qrSize = `${Math.min(36, Math.floor((277 - (rows - 1) * 4) / rows) - 12)}mm`;
  let page;
  for (let i = 0; i < codes.length; i++) {
    if (i % per === 0) {
      page = h('section', { class: 'sheet-page' });
      page.style.gridTemplateColumns = `repeat(${cols}, 1fr)`;
      page.style.gridTemplateRows = `repeat(${rows}, 1fr)`;
      pages.append(page);
    }
    let qr;
    try {
      qr = await source(codes[i]);
    } catch (e) {
      $('#banner').textContent = t('admin.unreachable', { status: e.message });
      $('#banner').hidden = false;
      qr = await sources.local(codes[i]);
    }
    const box = h('div', { class: 'qr' }, qr);
    box.style.width = qrSize;
    box.style.height = qrSize;
    const bar = await barcode(codes[i]);
    page.append(h('article', { class: bar ? 'voucher with-barcode' : 'voucher', dataset: { code: codes[i] } }, box,
      h('div', { class: 'text' },
        heading ? h('div', { class: 'heading', text: heading }) : null,
        h('div', { class: 'vcode', text: codes[i] }),
        expText ? h('div', { class: 'expiry', text: t('sheet.valid_until', { date: expText }) }) : null),
      bar));
  }
  $('#count').textContent = t('sheet.count', { n: codes.length, pages: Math.ceil(codes.length / per) });
  $('#print').disabled = false;
  document.body.dataset.made = String(codes.length);
}

function save() {
  try {
    sessionStorage.setItem(SAVE, JSON.stringify({
      codes: $('#codes').value, heading: $('#heading').value,
      expires: $('#expires').value, per: $('#per-page').value,
    }));
  } catch { /* full */ }
}

function restore() {
  let v;
  try { v = JSON.parse(sessionStorage.getItem(SAVE)); } catch { v = null; }
  if (!v) return;
  $('#codes').value = v.codes || '';
  $('#heading').value = v.heading || '';
  $('#expires').value = v.expires || '';
  if (v.per) $('#per-page').value = v.per;
}

async function main() {
  cfg = await loadConfig(new URL('../', import.meta.url));
  initLang(cfg.language);
  applyI18n(document);
  restore();
  $('#lang').addEventListener('click', () => setLang(getLang() === 'th' ? 'en' : 'th'));
  onLang(() => { if (document.body.dataset.made) make(); });
  $('#sheet-form').addEventListener('submit', make);
  $('#sheet-form').addEventListener('input', save);
  $('#print').addEventListener('click', () => window.print());
  document.body.dataset.ready = '1';
}

main();
