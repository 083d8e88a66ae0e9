// Segments: a builder of the worker's rules (docs/worker.md, Segments),
// all of which must hold, with a live count and a sample (POST
// /v1/segments/preview, debounced), the engine's refusal next to its rule.
import { t } from './i18n.js';
import { enc } from './admin.js';
import { zoneOffset } from './time.js';
import { h, $, clear } from './dom.js';
import { draftGet, draftSet, debounce } from './kit.js';
import { memberTable } from './members.js';

export const RULES = ['all', 'tier', 'birth_month', 'tags', 'list', 'rfm', 'dormant', 'new', 'top'];
const NEEDS = { tier: 'list', tags: 'list', list: 'list', rfm: 'list', dormant: 'days', new: 'days', top: 'count' };
export const RFM = ['champions', 'loyal', 'new_customers', 'potential', 'at_risk', 'hibernating', 'need_attention'];

// the rows as the worker's text: "tier:gold & birth_month"
export function ruleText(rows) {
  return rows.map((r) => {
    const v = String(r.value || '').split(',').map((x) => x.trim()).filter(Boolean).join(',');
    if (r.kind === 'all') return 'all';
    if (r.kind === 'birth_month') return v ? `birth_month:${v}` : 'birth_month';
    return `${r.kind}:${v}`;
  }).join(' & ');
}

// the worker's text back into rows (what the builder cannot show stays text)
export function parseRules(text) {
  const rows = [];
  for (const part of String(text || '').split('&').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z_]+)(?::(.*))?$/.exec(part);
    if (!m || !RULES.includes(m[1])) return null;
    rows.push({ kind: m[1], value: m[2] || '' });
  }
  return rows;
}

function offsetText(min) {
  const s = min < 0 ? '-' : '+';
  const a = Math.abs(min);
  return `${s}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

export async function segmentsScreen(ctx, parts, query) {
  const start = query.segment ? parseRules(query.segment) : null;
  let rows = start || (draftGet('segment') || {}).rows || [{ kind: 'all', value: '' }];
  const list = h('div', { id: 'rules', class: 'rules' });
  const expr = h('output', { id: 'segment-text', class: 'mono' });
  const count = h('p', { id: 'segment-count', class: 'count', 'aria-live': 'polite' });
  const err = h('p', { id: 'err-segment', class: 'field-error', 'aria-live': 'polite' });
  const sample = h('div', { id: 'segment-sample' });
  const use = h('a', { class: 'button primary', id: 'segment-use', text: t('segments.use') });
  let seq = 0;

  const preview = debounce(async () => {
    const text = ruleText(rows);
    const mine = ++seq;
    count.textContent = t('segments.counting');
    try {
      const r = await ctx.api.post('segments/preview', {
        segment: text, sample: 10, tz_offset: offsetText(zoneOffset(ctx.cfg.time_zone)),
      });
      if (mine !== seq) return;
      ctx.banner('');
      err.textContent = '';
      for (const el of list.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      for (const p of list.querySelectorAll('.field-error')) p.textContent = '';
      count.dataset.count = String(r.count);
      count.dataset.for = text;
      count.textContent = t('segments.count', { count: r.count.toLocaleString(), members: (r.members ?? 0).toLocaleString() });
      clear(sample).append(h('h2', { text: t('segments.sample') }), memberTable('segment-members', r.sample || []));
    } catch (e) {
      if (mine !== seq) return;
      delete count.dataset.count;
      delete count.dataset.for;
      count.textContent = '';
      if (e.reason && e.status < 500 && e.status !== 401) {
        // 'segment "tier:": tier: expected ...' names its rule
        const msg = t('form.engine_says', { message: e.apiMessage || e.reason });
        const m = /": ([a-z_]+)[:(]/.exec(e.apiMessage || '');
        const i = m ? rows.findIndex((r) => r.kind === m[1]) : -1;
        if (i >= 0) {
          $(`#err-rule-${i}`).textContent = msg;
          $(`#f-rule-value-${i}`)?.setAttribute('aria-invalid', 'true');
        } else err.textContent = msg;
      } else ctx.banner(ctx.errorText(e));
    }
  }, 350);

  const changed = () => {
    draftSet('segment', { rows });
    const text = ruleText(rows);
    expr.textContent = text;
    use.href = '#/automations/new?segment=' + enc(text);
    preview();
  };

  const drawRows = () => {
    clear(list);
    rows.forEach((r, i) => {
      const kind = h('select', { id: `f-rule-kind-${i}`, 'aria-label': t('segments.rule') },
        RULES.map((k) => h('option', { value: k, selected: k === r.kind, text: t('segments.rule.' + k) })));
      let value;
      if (r.kind === 'birth_month') {
        value = h('select', { id: `f-rule-value-${i}`, 'aria-label': t('segments.value') },
          h('option', { value: '', text: t('segments.this_month') }),
          [...Array(12).keys()].map((m) => h('option', { value: String(m + 1), selected: String(m + 1) === String(r.value),
            text: new Intl.DateTimeFormat(document.documentElement.lang === 'th' ? 'th-TH' : 'en-GB', { month: 'long', timeZone: 'UTC' })
              .format(new Date(Date.UTC(2000, m, 1))) })));
      } else if (r.kind !== 'all') {
        value = h('input', { id: `f-rule-value-${i}`, value: r.value || '', autocomplete: 'off', spellcheck: 'false',
          inputmode: NEEDS[r.kind] === 'list' ? 'text' : 'numeric',
          placeholder: t('segments.ph.' + r.kind), 'aria-label': t('segments.value'),
          'aria-describedby': `err-rule-${i} hint-rule-${i}` });
      }
      kind.addEventListener('change', () => { rows[i] = { kind: kind.value, value: '' }; drawRows(); changed(); });
      if (value) value.addEventListener(value.tagName === 'SELECT' ? 'change' : 'input', () => { rows[i].value = value.value; changed(); });
      const remove = rows.length > 1 ? h('button', { type: 'button', class: 'small', id: `rule-remove-${i}`, 'aria-label': t('segments.remove'),
        text: '×', onclick: () => { rows.splice(i, 1); drawRows(); changed(); } }) : null;
      list.append(h('div', { class: 'rule', dataset: { kind: r.kind } },
        i ? h('span', { class: 'and', text: t('segments.and') }) : null,
        h('div', { class: 'rule-row' }, kind, value, remove),
        r.kind !== 'all' ? h('p', { class: 'hint', id: `hint-rule-${i}`, text: t('segments.hint.' + r.kind, { groups: RFM.join(', ') }) }) : null,
        h('p', { class: 'field-error', id: `err-rule-${i}`, 'aria-live': 'polite' })));
    });
  };

  const add = h('button', { type: 'button', id: 'rule-add', text: t('segments.add'), onclick: () => {
    rows.push({ kind: 'tier', value: '' });
    drawRows();
    changed();
    $(`#f-rule-value-${rows.length - 1}`)?.focus();
  } });

  ctx.shell(h('section', { id: 'segments-screen' },
    h('div', { class: 'toolbar' }, h('h1', { text: t('segments.title') }),
      h('a', { class: 'button', href: '#/members', text: t('nav.members') })),
    h('div', { class: 'card' }, h('p', { class: 'hint', text: t('segments.intro') }), list,
      h('div', { class: 'toolbar' }, add),
      h('p', {}, h('span', { class: 'label', text: t('segments.as_text') }), expr), err, count,
      h('div', { class: 'toolbar' }, use)),
    sample));
  drawRows();
  changed();
}
