// What the codes, members, segments and automations screens share: fields'
// error lines, the engine's reason put next to its field, raw
// (non-JSON) calls to the admin API, codes shown in their pattern, drafts
// kept in the tab.  Text from data always goes in as text (dom.js).
import { t, locale } from './i18n.js';
import { getToken, AdminError } from './admin.js';
import { formatMoney } from './money.js';
import { h, $ } from './dom.js';

export function draftGet(k) { try { return JSON.parse(sessionStorage.getItem('voucher.draft.' + k)); } catch { return null; } }
export function draftSet(k, v) { try { sessionStorage.setItem('voucher.draft.' + k, JSON.stringify(v)); } catch { /* full */ } }
export function draftDel(k) { try { sessionStorage.removeItem('voucher.draft.' + k); } catch { /* none */ } }

export function setError(id, text) {
  const p = $('#err-' + id);
  const el = $('#f-' + id);
  if (p) p.textContent = text || '';
  if (el) {
    if (text) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
  }
  return !!p;
}

export function clearErrors(root) {
  for (const p of root.querySelectorAll('.field-error')) p.textContent = '';
  for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

// the engine's refusal next to the field it names (fields maps the API's
// field, or the first word of its message, to a form field); else false
export function engineError(e, fields) {
  if (!(e instanceof AdminError) || !e.reason || e.status >= 500 || e.status === 401) return false;
  const msg = e.apiMessage || e.reason;
  let f = e.field && fields[e.field];
  if (!f) {
    // "automation of campaign "x": codes.pattern: ..." names the sub-field
    const m = /(?:^|: )([a-z_]+(?:\.[a-z_]+)?)(?: "[^"]*")?: /.exec(msg.replace(/^automation of campaign "[^"]*": /, ''));
    if (m) f = fields[m[1]] || fields[m[1].split('.')[0]];
  }
  if (!f) f = e.field ? fields['*'] : undefined;
  if (!f) return false;
  return setError(f, t('form.engine_says', { message: msg.replace(/^automation of campaign "[^"]*": /, '') }));
}

// a call whose body or answer is not JSON: a CSV upload, a job's output
export async function rawCall(base, method, path, { body, type, query } = {}) {
  let url = (base.endsWith('/') ? base : base + '/') + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    if ([...q].length) url += '?' + q;
  }
  const headers = { Authorization: 'Bearer ' + getToken() };
  if (type) headers['Content-Type'] = type;
  let r;
  try {
    r = await fetch(url, { method, headers, body, cache: 'no-store', credentials: 'same-origin' });
  } catch {
    throw new AdminError({ kind: 'offline', status: 0 });
  }
  const ct = r.headers.get('Content-Type') || '';
  if (r.ok && !/json/.test(ct)) return { text: await r.text(), type: ct };
  let j = null;
  try { j = await r.json(); } catch { j = null; }
  if (r.ok && j) return { json: j };
  if (j && typeof j.reason === 'string') {
    throw new AdminError({ kind: r.status >= 500 ? 'unavailable' : 'refused', status: r.status, ...j });
  }
  throw new AdminError({ kind: 'unavailable', status: r.status });
}

// a code as it was sent: "SALE7Q2M94KD" in "SALE-####-####" is
// "SALE-7Q2M-94KD"; a code that does not fit is shown as stored
export function showCode(code, pattern) {
  if (!pattern || !code) return code || '';
  let out = '';
  let i = 0;
  for (const ch of pattern) {
    if (ch === '#') {
      if (i >= code.length) return code;
      out += code[i++];
    } else if (i < code.length && ch.toUpperCase() === code[i].toUpperCase() && ch !== '-' && ch !== ' ') {
      out += code[i++];
    } else if (ch === '-' || ch === ' ') {
      out += ch;
    } else {
      return code;
    }
  }
  return i === code.length ? out : code;
}

// campaign -> pattern, from the automations and the issue jobs
export async function codePatterns(api) {
  const map = {};
  try {
    const jobs = await api.get('jobs', { kind: 'codes.issue', limit: 200 });
    for (const j of (jobs.items || []).slice().reverse()) {
      if (j.params && j.params.pattern) map[j.params.campaign] = j.params.pattern;
    }
  } catch { /* shown as stored */ }
  try {
    for (const a of await api.all('automations', {}, 500)) {
      const p = a.definition && a.definition.codes && a.definition.codes.pattern;
      if (p) map[a.campaign] = p;
    }
  } catch { /* shown as stored */ }
  return map;
}

export function money(minor, currency) { return formatMoney(minor ?? 0, currency || 'THB', locale()); }

// unix seconds or milliseconds (audit ids) in the shop's zone
export function when(ts, zone) {
  if (ts === undefined || ts === null || ts === '') return '';
  let n = Number(ts);
  if (n > 1e11) n = Math.floor(n / 1000);
  return new Intl.DateTimeFormat(locale(), { timeZone: zone, dateStyle: 'medium', timeStyle: 'short' })
    .format(new Date(n * 1000));
}

export function debounce(f, ms) {
  let timer;
  return (...a) => { clearTimeout(timer); timer = setTimeout(() => f(...a), ms); };
}

// seconds as "0:07" or "1:02:03"
export function clock(s) {
  s = Math.max(0, Math.round(s));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function table(id, heads, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { class: x.num ? 'num' : undefined, text: x.text ?? x })))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: heads.length, text: t('admin.empty') })))));
}

// a file picked, or text pasted, as the body of an import
export async function fileOrText(fileInput, textArea) {
  const f = fileInput.files && fileInput.files[0];
  if (f) return { body: await f.text(), name: f.name };
  return { body: textArea.value, name: '' };
}
