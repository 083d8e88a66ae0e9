// Messages in Thai and English.  Text only: t() returns a string that the
// pages put into textContent, never into innerHTML.
import en from '../i18n/en.js';
import th from '../i18n/th.js';

export const catalogues = { en, th };
const KEY = 'voucher.lang';
const listeners = new Set();
let lang = 'th';

function stored() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

// Thai unless the browser or an earlier choice says English
export function initLang(fallback) {
  const s = stored();
  if (s && catalogues[s]) lang = s;
  else if (fallback && catalogues[fallback]) lang = fallback;
  else lang = (navigator.language || '').toLowerCase().startsWith('en') ? 'en' : 'th';
  document.documentElement.lang = lang;
  return lang;
}

export function getLang() { return lang; }

// the locale numbers and dates are written in
export function locale() { return lang === 'th' ? 'th-TH' : 'en-GB'; }

export function setLang(l) {
  if (!catalogues[l]) return;
  lang = l;
  try { localStorage.setItem(KEY, l); } catch { /* private mode */ }
  document.documentElement.lang = l;
  applyI18n(document);
  for (const f of listeners) f(l);
}

export function onLang(f) { listeners.add(f); }

export function t(key, vars) {
  const cat = catalogues[lang];
  let s = key in cat ? cat[key] : (key in en ? en[key] : key);
  if (vars) {
    s = s.replace(/\{([a-z_]+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  }
  return s;
}

// data-i18n="key" sets the text, data-i18n-placeholder, data-i18n-label
// (aria-label) and data-i18n-title the attributes; data-i18n-vars holds
// JSON for the placeholders
export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n],[data-i18n-placeholder],[data-i18n-label],[data-i18n-title]')) {
    let vars;
    if (el.dataset.i18nVars) {
      try { vars = JSON.parse(el.dataset.i18nVars); } catch { vars = undefined; }
    }
    if (el.dataset.i18n) el.textContent = t(el.dataset.i18n, vars);
    if (el.dataset.i18nPlaceholder) el.placeholder = t(el.dataset.i18nPlaceholder, vars);
    if (el.dataset.i18nLabel) el.setAttribute('aria-label', t(el.dataset.i18nLabel, vars));
    if (el.dataset.i18nTitle) el.title = t(el.dataset.i18nTitle, vars);
  }
  if (root === document) document.title = t(document.body.dataset.titleKey || 'app.title');
}
