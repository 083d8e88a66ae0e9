// Automations: the list with a calendar of the next runs; the form (a
// schedule, birthdays, a trigger or a segment entered; per_member; the
// codes; the message); run now; a preview of the recipients and of the
// message as it will be sent; the send history (the delivery log).
import { t, locale } from './i18n.js';
import { enc, AdminError } from './admin.js';
import { h, $, clear } from './dom.js';
import {
  setError, clearErrors, engineError, showCode, when, table, draftGet, draftSet, draftDel,
} from './kit.js';
import { field } from './field.js';

const KINDS = ['birthdays day', 'birthdays', 'daily', 'weekly', 'monthly', 'once'];
const EVENTS = ['signup', 'purchase', 'cart_abandoned', 'referral', 'tier_upgraded', 'tier_downgraded',
  'tier_will_drop', 'points_expiring', 'reward_redeemed', 'referral_converted'];
const PER_MEMBER = ['', 'once', 'every run', 'once a month', 'once a year', 'once per 30 days'];
const LOCALES = ['th-TH', 'en', 'th-TH-u-ca-gregory', 'zh-CN', ''];

// "weekly mon,fri 09:00" <-> { kind, detail, time }
export function splitSchedule(s) {
  const m = /^(birthdays day|birthdays|daily|weekly|monthly|once)\s*(.*?)\s*(\d{1,2}:\d{2})?$/.exec(String(s || '').trim());
  if (!m) return { kind: 'birthdays day', detail: '', time: '09:00' };
  return { kind: m[1], detail: m[2] || '', time: m[3] || '' };
}
export function joinSchedule(kind, detail, time) {
  return [kind, ['weekly', 'monthly', 'once'].includes(kind) ? detail.trim() : '', time.trim()].filter(Boolean).join(' ');
}

// what the form holds -> the definition PUT sends; what the form does not
// show (codes.length, charset, suffix, a field the engine gains) is kept
// from the definition it edits (base)
const OWNED = ['schedule', 'trigger', 'enters', 'segment', 'per_member', 'status', 'issue', 'code', 'catch_up',
  'channel', 'locale', 'message', 'subject'];
export function formToDefinition(v, base) {
  const d = { ...(base || {}) };
  for (const k of OWNED) delete d[k];
  if (v.mode === 'schedule') {
    d.schedule = joinSchedule(v.kind, v.detail, v.time);
    if (v.kind.startsWith('birthdays') && !v.catch_up) d.catch_up = false;
  } else if (v.mode === 'trigger') {
    d.trigger = { event: v.event };
    if (v.delay.trim()) d.trigger.delay = v.delay.trim();
    if (v.unless) d.trigger.unless = 'purchase';
  } else d.enters = v.enters.trim();
  if (v.segment.trim()) d.segment = v.segment.trim();
  if (v.per_member) d.per_member = v.per_member;
  if (v.status === 'paused') d.status = 'paused';
  if (v.issue === 'shared') {
    d.issue = 'shared';
    d.code = v.code.trim();
    delete d.codes;
  } else {
    const codes = { ...(d.codes || {}) };
    for (const k of ['prefix', 'pattern', 'valid_days', 'max_uses']) delete codes[k];
    const p = v.pattern.trim();
    if (p) {
      const m = /^([A-Za-z0-9]*)/.exec(p);
      if (m[1]) codes.prefix = m[1].toUpperCase();
      codes.pattern = p;
    } else if (base && base.codes && base.codes.prefix) {
      codes.prefix = base.codes.prefix;
    }
    if (v.valid_days.trim()) codes.valid_days = Number(v.valid_days.trim());
    if (v.max_uses.trim()) codes.max_uses = Number(v.max_uses.trim());
    if (Object.keys(codes).length) d.codes = codes;
    else delete d.codes;
  }
  d.channel = v.channel.trim();
  if (v.locale) d.locale = v.locale;
  d.message = v.message;
  if (v.subject.trim()) d.subject = v.subject.trim();
  return d;
}

function definitionToForm(d) {
  const s = splitSchedule(d.schedule);
  return {
    mode: d.trigger ? 'trigger' : d.enters ? 'enters' : 'schedule',
    kind: s.kind, detail: s.detail, time: s.time || '09:00',
    event: d.trigger ? d.trigger.event : 'signup', delay: d.trigger && d.trigger.delay ? String(d.trigger.delay) : '',
    unless: !!(d.trigger && d.trigger.unless), enters: d.enters || '', catch_up: d.catch_up !== false,
    segment: d.segment || '', per_member: d.per_member || '', status: d.status || 'active',
    issue: d.issue === 'shared' ? 'shared' : 'unique', code: d.code || '',
    pattern: (d.codes && d.codes.pattern) || '', valid_days: d.codes && d.codes.valid_days ? String(d.codes.valid_days) : '',
    max_uses: d.codes && d.codes.max_uses ? String(d.codes.max_uses) : '',
    channel: d.channel || '', locale: d.locale || '', message: d.message || '', subject: d.subject || '',
  };
}

function describe(d) {
  if (d.trigger) return t('auto.on_event', { event: t('auto.event.' + d.trigger.event) });
  if (d.enters) return t('auto.on_enters', { segment: d.enters });
  const s = splitSchedule(d.schedule);
  return `${t('auto.kind.' + s.kind)} ${s.detail} ${s.time}`.replace(/\s+/g, ' ').trim();
}

export async function automationsScreen(ctx, parts, query) {
  if (parts[0]) return automationPage(ctx, parts[0] === 'new' ? null : parts[0], query);
  const slot = h('div', { id: 'auto-slot' }, h('p', { text: t('admin.loading') }));
  const cal = h('div', { class: 'card', id: 'calendar' }, h('h2', { text: t('auto.calendar') }));
  ctx.shell(h('section', { id: 'automations-screen' },
    h('div', { class: 'toolbar' }, h('h1', { text: t('auto.title') }),
      h('a', { class: 'button primary', href: '#/automations/new', id: 'auto-new', text: t('auto.new') })),
    slot, cal));
  let items;
  try {
    items = await ctx.api.all('automations', {}, 500);
  } catch (e) { clear(slot); ctx.banner(ctx.errorText(e)); return; }
  const runs = [];
  const rows = [];
  for (const a of items) {
    let next = null;
    try {
      const n = await ctx.api.get(`automations/${enc(a.campaign)}/next`, { count: 10 });
      for (const r of n.next_runs || []) runs.push({ at: r, campaign: a.campaign });
      next = (n.next_runs || [])[0];
    } catch { /* a trigger has no next run */ }
    const d = a.definition || {};
    rows.push(h('tr', { dataset: { campaign: a.campaign } },
      h('td', {}, h('a', { href: '#/automations/' + enc(a.campaign), text: a.campaign })),
      h('td', { text: describe(d) }),
      h('td', { class: 'mono', text: d.segment || d.enters || '' }),
      h('td', { text: d.channel || '' }),
      h('td', { text: d.status === 'paused' ? t('status.paused') : t('status.active') }),
      h('td', { text: next ? when(next, ctx.cfg.time_zone) : '—' })));
  }
  clear(slot).append(table('automations', [t('auto.campaign'), t('auto.when'), t('auto.segment'), t('auto.channel'),
    t('campaigns.col_status'), t('auto.next_run')], rows));
  // the calendar: the next runs, day by day in the shop's zone
  runs.sort((a, b) => a.at - b.at);
  const dayOf = new Intl.DateTimeFormat(locale(), { timeZone: ctx.cfg.time_zone, weekday: 'short', day: 'numeric', month: 'short' });
  const timeOf = new Intl.DateTimeFormat(locale(), { timeZone: ctx.cfg.time_zone, timeStyle: 'short' });
  const days = new Map();
  for (const r of runs.slice(0, 60)) {
    const k = dayOf.format(new Date(r.at * 1000));
    if (!days.has(k)) days.set(k, []);
    days.get(k).push(r);
  }
  if (!days.size) cal.append(h('p', { text: t('auto.no_runs') }));
  cal.append(h('ol', { class: 'calendar' }, [...days].map(([k, rs]) => h('li', {},
    h('span', { class: 'day', text: k }),
    h('ul', {}, rs.map((r) => h('li', { dataset: { at: String(r.at) } },
      h('span', { class: 'time', text: timeOf.format(new Date(r.at * 1000)) }), ' ',
      h('a', { href: '#/automations/' + enc(r.campaign), text: r.campaign }))))))));
}

async function automationPage(ctx, id, query) {
  const create = id === null;
  const dkey = 'auto.' + (create ? '+new' : id);
  let campaigns = [];
  let current = null;
  const section = h('section', { id: 'automation-page' }, h('h1', { text: create ? t('auto.new') : t('auto.edit', { id }) }));
  ctx.shell(section);
  try {
    campaigns = await ctx.api.all('campaigns', {}, 500);
    if (!create) current = await ctx.api.get('automations/' + enc(id));
  } catch (e) {
    if (!(e instanceof AdminError && e.reason === 'not_found')) { ctx.banner(ctx.errorText(e)); }
  }
  const v = draftGet(dkey) || (current ? definitionToForm(current.definition) : definitionToForm({ segment: query.segment || 'birth_month', locale: 'th-TH' }));
  if (query.segment && create) v.segment = query.segment;
  const input = (a) => h('input', { autocomplete: 'off', spellcheck: 'false', ...a });
  const sel = (opts, val, label) => h('select', {}, opts.map((o) => h('option', { value: o, selected: o === val, text: label(o) })));
  const radio = (name, val, cur) => h('label', { class: 'inline' },
    h('input', { type: 'radio', name, value: val, checked: val === cur, id: `f-${name}-${val.replace(/\s/g, '_')}` }), t(`auto.${name}.${val}`));

  const form = h('form', { id: 'auto-form', novalidate: true },
    h('p', { class: 'field-error', id: 'err-definition', 'aria-live': 'polite' }),
    h('fieldset', {}, h('legend', { text: t('auto.section_what') }),
      create ? field('campaign', t('auto.campaign'), h('select', {},
        h('option', { value: '', text: t('codes.pick_campaign') }),
        campaigns.map((c) => h('option', { value: c.id, selected: c.id === v.campaign, text: c.name ? `${c.name} (${c.id})` : c.id })))) : null,
      field('status', t('campaigns.col_status'), sel(['active', 'paused'], v.status, (o) => t('status.' + o)))),
    h('fieldset', {}, h('legend', { text: t('auto.section_when') }),
      h('div', { class: 'days', role: 'radiogroup' }, ['schedule', 'trigger', 'enters'].map((m) => radio('mode', m, v.mode))),
      h('div', { class: 'grid2', id: 'when-schedule' },
        field('kind', t('auto.kind'), sel(KINDS, v.kind, (o) => t('auto.kind.' + o))),
        field('detail', t('auto.detail'), input({ value: v.detail }), t('auto.detail_hint')),
        field('time', t('auto.time'), input({ type: 'time', value: v.time })),
        h('label', { class: 'inline', id: 'catch-up' }, h('input', { type: 'checkbox', id: 'f-catch_up', name: 'catch_up', checked: v.catch_up }), t('auto.catch_up'))),
      h('div', { class: 'grid2', id: 'when-trigger' },
        field('event', t('auto.event'), sel(EVENTS, v.event, (o) => t('auto.event.' + o))),
        field('delay', t('auto.delay'), input({ value: v.delay, placeholder: '2h' }), t('auto.delay_hint')),
        h('label', { class: 'inline' }, h('input', { type: 'checkbox', id: 'f-unless', name: 'unless', checked: v.unless }), t('auto.unless'))),
      h('div', { id: 'when-enters' }, field('enters', t('auto.enters'), input({ value: v.enters, placeholder: 'dormant:60' }), t('auto.enters_hint')))),
    h('fieldset', {}, h('legend', { text: t('auto.section_who') }),
      field('segment', t('auto.segment'), input({ value: v.segment, class: 'mono' }), t('auto.segment_hint')),
      h('p', {}, h('a', { href: '#/segments?segment=' + enc(v.segment || ''), id: 'auto-builder', text: t('auto.open_builder') })),
      field('per_member', t('auto.per_member'), sel(PER_MEMBER, v.per_member, (o) => (o ? t('auto.per.' + o.replace(/ /g, '_')) : t('auto.per.default')))),
      field('channel', t('auto.channel'), input({ value: v.channel }), t('auto.channel_hint'))),
    h('fieldset', {}, h('legend', { text: t('auto.section_codes') }),
      h('div', { class: 'days', role: 'radiogroup' }, ['unique', 'shared'].map((m) => radio('issue', m, v.issue))),
      h('div', { class: 'grid2', id: 'codes-unique' },
        field('pattern', t('codes.pattern'), input({ value: v.pattern, placeholder: 'HBD-####-####-####' }), t('auto.pattern_hint')),
        field('valid_days', t('auto.valid_days'), input({ inputmode: 'numeric', value: v.valid_days })),
        field('max_uses', t('auto.max_uses'), input({ inputmode: 'numeric', value: v.max_uses }))),
      h('div', { id: 'codes-shared' }, field('code', t('auto.shared_code'), input({ value: v.code })))),
    h('fieldset', {}, h('legend', { text: t('auto.section_message') }),
      field('locale', t('auto.locale'), sel(LOCALES, v.locale, (o) => t('auto.locale.' + (o || 'none')))),
      field('subject', t('auto.subject'), input({ value: v.subject })),
      field('message', t('auto.message'), h('textarea', { rows: 3 }), t('auto.message_hint'))),
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary big', id: 'auto-save', text: t('form.save') }),
      create ? null : h('button', { type: 'button', id: 'auto-preview', text: t('auto.preview') }),
      create ? null : h('button', { type: 'button', id: 'auto-run', text: t('auto.run_now') }),
      h('a', { class: 'button', href: '#/automations', text: t('form.cancel') })));
  form.querySelector('#f-message').value = v.message;
  const out = h('div', { id: 'auto-out' });
  section.append(form, out);

  const read = () => ({
    campaign: create ? $('#f-campaign').value : id,
    mode: form.querySelector('input[name="mode"]:checked')?.value || 'schedule',
    kind: $('#f-kind').value, catch_up: $('#f-catch_up').checked, detail: $('#f-detail').value, time: $('#f-time').value,
    event: $('#f-event').value, delay: $('#f-delay').value, unless: $('#f-unless').checked, enters: $('#f-enters').value,
    segment: $('#f-segment').value, per_member: $('#f-per_member').value, status: $('#f-status').value,
    issue: form.querySelector('input[name="issue"]:checked')?.value || 'unique', code: $('#f-code').value,
    pattern: $('#f-pattern').value, valid_days: $('#f-valid_days').value, max_uses: $('#f-max_uses').value,
    channel: $('#f-channel').value, locale: $('#f-locale').value, message: $('#f-message').value, subject: $('#f-subject').value,
  });
  const shape = () => {
    const r = read();
    $('#when-schedule').hidden = r.mode !== 'schedule';
    $('#when-trigger').hidden = r.mode !== 'trigger';
    $('#when-enters').hidden = r.mode !== 'enters';
    $('#codes-unique').hidden = r.issue !== 'unique';
    $('#codes-shared').hidden = r.issue !== 'shared';
    $('#catch-up').hidden = !r.kind.startsWith('birthdays');
    form.querySelector('[data-field="detail"]').hidden = !['weekly', 'monthly', 'once'].includes(r.kind);
    $('#auto-builder').href = '#/segments?segment=' + enc(r.segment);
  };
  shape();
  form.addEventListener('input', () => { draftSet(dkey, read()); shape(); });
  form.addEventListener('change', () => { draftSet(dkey, read()); shape(); });

  const FIELDS = { campaign: 'campaign', schedule: 'kind', trigger: 'event', 'trigger.delay': 'delay', delay: 'delay', enters: 'enters',
    segment: 'segment', per_member: 'per_member', codes: 'pattern', pattern: 'pattern', valid_days: 'valid_days',
    max_uses: 'max_uses', code: 'code', issue: 'code', channel: 'channel', locale: 'locale', message: 'message',
    template: 'message', subject: 'subject', status: 'status', catch_up: 'kind', '*': 'definition' };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    ctx.banner('');
    const r = read();
    let bad = false;
    if (create && !r.campaign) bad = setError('campaign', t('form.err_required'));
    if (!r.channel.trim()) bad = setError('channel', t('form.err_required'));
    if (!r.message.trim()) bad = setError('message', t('form.err_required'));
    if (r.mode === 'schedule' && !r.time) bad = setError('time', t('form.err_required'));
    if (bad) { form.querySelector('[aria-invalid="true"]')?.focus(); return; }
    const save = $('#auto-save');
    save.disabled = true;
    try {
      await ctx.api.put('automations/' + enc(r.campaign), formToDefinition(r, current && current.definition));
      draftDel(dkey);
      if (create) location.hash = '#/automations/' + enc(r.campaign);
      else ctx.redraw();
    } catch (e) {
      if (!engineError(e, FIELDS)) ctx.banner(ctx.errorText(e));
    } finally { save.disabled = false; }
  });
  if (create) return;

  $('#auto-preview').addEventListener('click', async () => {
    ctx.banner('');
    try {
      const p = await ctx.api.get(`automations/${enc(id)}/preview`, { sample: 5 });
      clear(out).append(h('div', { class: 'card', id: 'preview' },
        h('h2', { text: t('auto.preview_title') }),
        h('p', { id: 'preview-count', dataset: { recipients: String(p.recipients) },
          text: t('auto.preview_count', { recipients: p.recipients, members: p.members, held: p.held, unreachable: p.unreachable }) }),
        h('ul', { class: 'messages' }, (p.sample || []).map((s) => h('li', { dataset: { member: s.member } },
          h('div', { class: 'to', text: `${s.name || s.member} → ${s.channel}: ${s.to || ''}` }),
          h('div', { class: 'message', text: s.message || '' }))))));
    } catch (e) { ctx.banner(ctx.errorText(e)); }
  });
  $('#auto-run').addEventListener('click', async () => {
    ctx.banner('');
    const b = $('#auto-run');
    b.disabled = true;
    try {
      const r = await ctx.api.post(`automations/${enc(id)}/run`);
      clear(out).append(h('div', { class: 'card ok', id: 'run-result', dataset: { queued: String(r.queued) },
        text: t('auto.run_done', { queued: r.queued, held: r.held, unreachable: r.unreachable, already: r.already ?? 0 }) }));
      setTimeout(() => history(), 1500);
    } catch (e) { ctx.banner(ctx.errorText(e)); } finally { b.disabled = false; }
  });

  // the next runs and the send history
  const nextBox = h('div', { class: 'card', id: 'next-runs' }, h('h2', { text: t('auto.next_runs') }));
  const histBox = h('div', { class: 'card', id: 'send-history' });
  section.append(nextBox, histBox);
  try {
    const n = await ctx.api.get(`automations/${enc(id)}/next`, { count: 5 });
    nextBox.append(h('ol', {}, (n.next_runs || []).map((x) => h('li', { text: when(x, ctx.cfg.time_zone) }))));
    if (!(n.next_runs || []).length) nextBox.append(h('p', { text: t('auto.no_runs') }));
  } catch (e) { nextBox.append(h('p', { text: t('auto.no_runs') })); }
  const pattern = current && current.definition && current.definition.codes && current.definition.codes.pattern;
  const history = async () => {
    try {
      const items = (await ctx.api.all(`campaigns/${enc(id)}/deliveries`, {}, 2000)).reverse();
      clear(histBox).append(h('div', { class: 'toolbar' }, h('h2', { text: t('auto.history') }),
        h('button', { type: 'button', id: 'history-refresh', text: t('auto.refresh'), onclick: history })),
      table('deliveries', [t('codes.when'), t('auto.run'), t('auto.member'), t('campaigns.col_status'), t('auto.channel'), t('codes.code'), t('auto.error')],
        items.map((d) => h('tr', { dataset: { status: d.status, member: d.member } },
          h('td', { text: when(d.at, ctx.cfg.time_zone) }), h('td', { text: d.run }),
          h('td', {}, h('a', { href: '#/members/' + enc(d.member), text: d.member })),
          h('td', { text: t('auto.status.' + d.status) }), h('td', { text: d.channel || '' }),
          h('td', { class: 'mono', text: showCode(d.code, pattern) }), h('td', { text: d.error || '' })))));
    } catch (e) { ctx.banner(ctx.errorText(e)); }
  };
  history();
}
