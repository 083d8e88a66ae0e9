// Members: search, import (CSV or JSON lines, a job), and a member's page:
// what is known of them, their loyalty tier, points and ledger, the codes
// they received and used.  All through the admin API.
import { t } from './i18n.js';
import { enc, AdminError } from './admin.js';
import { h, $, clear } from './dom.js';
import {
  setError, clearErrors, engineError, rawCall, showCode, codePatterns, money, when,
  table, fileOrText, draftGet, draftSet,
} from './kit.js';
import { field } from './field.js';
import { jobPanel } from './codes.js';

export async function membersScreen(ctx, parts, query) {
  if (parts[0]) return memberPage(ctx, parts[0]);
  const q = h('input', { id: 'q', type: 'search', value: query.q || '', placeholder: t('members.search'), 'aria-label': t('members.search') });
  const tier = h('input', { id: 'tier', value: query.tier || '', placeholder: t('members.tier'), 'aria-label': t('members.tier'), spellcheck: 'false' });
  const tag = h('input', { id: 'tag', value: query.tag || '', placeholder: t('members.tag'), 'aria-label': t('members.tag'), spellcheck: 'false' });
  const filter = h('form', { class: 'toolbar', id: 'member-filter' }, q, tier, tag,
    h('button', { type: 'submit', text: t('members.search') }));
  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, el] of [['q', q], ['tier', tier], ['tag', tag]]) if (el.value.trim()) p.set(k, el.value.trim());
    location.hash = '#/members' + ([...p].length ? '?' + p : '');
  });
  const slot = h('div', { id: 'members-slot' }, h('p', { text: t('admin.loading') }));

  const keep = draftGet('members.import') || {};
  const imp = h('form', { class: 'card', id: 'member-import', novalidate: true },
    h('h2', { text: t('members.import_title') }),
    field('members_file', t('members.import_file'), h('input', { type: 'file', accept: '.csv,.jsonl,.json,text/csv' })),
    field('members_text', t('members.import_text'), h('textarea', { rows: 4, spellcheck: 'false' }), t('members.import_hint')),
    h('button', { type: 'submit', class: 'primary', id: 'members-import-go', text: t('members.import_go') }),
    h('div', { id: 'members-job' }));
  imp.querySelector('#f-members_text').value = keep.text || '';
  imp.addEventListener('input', () => draftSet('members.import', { text: $('#f-members_text').value }));
  imp.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(imp);
    ctx.banner('');
    const { body, name } = await fileOrText($('#f-members_file'), $('#f-members_text'));
    if (!body.trim()) { setError('members_text', t('form.err_required')); return; }
    const jsonl = /\.jsonl?$/.test(name) || body.trim().startsWith('{');
    try {
      const r = await rawCall(ctx.cfg.admin_api, 'POST', 'jobs/members/import', {
        body, type: jsonl ? 'application/x-ndjson' : 'text/csv',
      });
      clear($('#members-job')).append(jobPanel(ctx, r.json, (j) => { if (j.state === 'done') draftSet('members.import', {}); }));
    } catch (e) {
      if (!engineError(e, { '*': 'members_text' })) ctx.banner(ctx.errorText(e));
    }
  });

  ctx.shell(h('section', { id: 'members-screen' },
    h('div', { class: 'toolbar' }, h('h1', { text: t('members.title') }),
      h('a', { class: 'button', href: '#/segments', id: 'to-segments', text: t('segments.title') })),
    filter, slot, imp));
  let items;
  try {
    items = await ctx.api.all('members', { q: query.q, tier: query.tier, tag: query.tag }, 500);
  } catch (e) {
    clear(slot);
    ctx.banner(ctx.errorText(e));
    return;
  }
  clear(slot).append(memberTable('members', items));
}

export function memberTable(id, items) {
  return table(id, [t('members.id'), t('members.name'), t('members.tier'), t('members.tags'),
    t('members.contact'), { text: t('members.purchases'), num: 1 }, { text: t('members.spend'), num: 1 }],
  items.map((m) => h('tr', { dataset: { id: m.id } },
    h('td', {}, h('a', { href: '#/members/' + enc(m.id), text: m.id })),
    h('td', { text: m.name || '' }),
    h('td', { text: m.tier || '' }),
    h('td', {}, (m.tags ? String(m.tags).split(',') : []).map((x) => h('span', { class: 'tag', text: x }))),
    h('td', { text: [m.phone, m.email].filter(Boolean).join(' · ') }),
    h('td', { class: 'num', text: String(m.purchases ?? 0) }),
    h('td', { class: 'num', text: money(m.spend ?? 0) }))));
}

async function memberPage(ctx, id) {
  const section = h('section', { id: 'member-page' },
    h('div', { class: 'toolbar' }, h('h1', { id: 'member-title', text: id }),
      h('a', { class: 'button', href: '#/members', text: t('members.back') })));
  ctx.shell(section);
  let m;
  try {
    m = await ctx.api.get('members/' + enc(id));
  } catch (e) {
    if (e instanceof AdminError && e.reason === 'not_found') section.append(h('p', { class: 'notice', id: 'member-missing', text: t('members.not_found', { id }) }));
    else ctx.banner(ctx.errorText(e));
    return;
  }
  $('#member-title').textContent = m.name ? `${m.name} (${m.id})` : m.id;
  const fact = (k, v) => (v === undefined || v === null || v === '' ? null : [h('dt', { text: t('members.' + k) }), h('dd', { dataset: { k }, text: String(v) })]);
  const day = (v) => (typeof v === 'number' ? when(v, ctx.cfg.time_zone) : v);
  section.append(h('div', { class: 'card' }, h('dl', { class: 'facts', id: 'member-facts' },
    fact('name', m.name), fact('phone', m.phone), fact('email', m.email), fact('line', m.line),
    fact('birthday', m.birthday), fact('tier', m.tier), fact('tags', m.tags), fact('signup', day(m.signup)),
    fact('last_purchase', day(m.last_purchase)), fact('purchases', m.purchases), fact('spend', money(m.spend ?? 0)),
    m.attrs ? fact('attrs', Object.entries(m.attrs).map(([k, v]) => `${k}: ${v}`).join(', ')) : null)));

  // loyalty: tier and points, the ledger
  const loyal = h('div', { class: 'card', id: 'member-loyalty' }, h('h2', { text: t('members.loyalty') }));
  section.append(loyal);
  try {
    const l = await ctx.api.get('loyalty/members/' + enc(id));
    loyal.append(h('dl', { class: 'facts' },
      h('dt', { text: t('members.tier') }), h('dd', { id: 'member-tier', text: l.tier || '' }),
      h('dt', { text: t('members.points') }), h('dd', { id: 'member-points', text: String(l.active ?? 0) }),
      h('dt', { text: t('members.pending') }), h('dd', { text: String(l.pending ?? 0) }),
      l.expiring_points ? [h('dt', { text: t('members.expiring') }), h('dd', { text: `${l.expiring_points} (${l.expiry_date || ''})` })] : null));
    const hist = await ctx.api.get(`loyalty/members/${enc(id)}/history`, { limit: 50 });
    loyal.append(table('member-ledger', [t('codes.when'), t('codes.what'), { text: t('members.points'), num: 1 }, { text: t('members.after'), num: 1 }, t('codes.ref')],
      (hist.items || []).map((x) => h('tr', {},
        h('td', { text: when(x.ts ?? x.at ?? (x.id && x.id.split('-')[0]), ctx.cfg.time_zone) }),
        h('td', { text: x.type || x.op || '' }),
        h('td', { class: 'num', text: String(x.points ?? '') }),
        h('td', { class: 'num', text: String(x.active ?? x.balance ?? '') }),
        h('td', { text: x.reason || x.order || x.ref || '' })))));
  } catch (e) {
    if (e instanceof AdminError && e.reason === 'no_programme') loyal.append(h('p', { class: 'hint', id: 'member-no-programme', text: t('members.no_programme') }));
    else loyal.append(h('p', { class: 'field-error', text: ctx.errorText(e) }));
  }

  // the codes they received and used
  const codes = h('div', { class: 'card', id: 'member-codes' }, h('h2', { text: t('members.codes') }));
  section.append(codes);
  try {
    const items = await ctx.api.all(`members/${enc(id)}/codes`, {}, 500);
    const patterns = await codePatterns(ctx.api);
    codes.append(table('member-codes-table', [t('codes.code'), t('codes.campaign'), t('codes.status'), { text: t('codes.used'), num: 1 }, t('codes.ends_at')],
      items.map((c) => h('tr', { dataset: { code: c.code } },
        h('td', { class: 'mono' }, h('a', { href: '#/codes/' + enc(showCode(c.code, patterns[c.campaign])), text: showCode(c.code, patterns[c.campaign]) })),
        h('td', { text: c.campaign }),
        h('td', { text: c.used > 0 ? t('members.used') : t('codes.status.' + c.status) }),
        h('td', { class: 'num', text: String(c.used ?? 0) }),
        h('td', { text: c.ends_at ? when(c.ends_at, ctx.cfg.time_zone) : '' })))));
  } catch (e) { codes.append(h('p', { class: 'field-error', text: ctx.errorText(e) })); }
}
