// Loyalty: the programme (earning rules, tiers, expiry) and the rewards
// catalogue, read and changed through the admin API's loyalty routes
// (docs/loyalty.md).  The engine's refusals are shown next to their field,
// as the campaign form shows its own.
import { t, locale } from './i18n.js';
import { formatMoney, parseMoney, moneyField, currencySymbol } from './money.js';
import { AdminError, enc } from './admin.js';
import { h, $ } from './dom.js';
import { field } from './field.js';

// the programme's fields the form edits, by how they are typed
const MONEY = ['every', 'point_value'];
const INTS = ['points', 'tier_grace_days', 'cap_order', 'cap_day', 'pending_days', 'expiry_months', 'notice_days'];
const LISTS = ['events', 'category_multipliers', 'sku_multipliers', 'exclude_categories', 'exclude_skus'];
const CHOICES = {
  status: ['active', 'paused'],
  tier_basis: ['points', 'spend'],
  tier_period: ['year', 'quarter', 'rolling12'],
  tier_downgrade: ['one_down', 'period'],
  expiry_round: ['none', 'month', 'quarter', 'year'],
  notify: ['no', 'yes'],
};
const TIER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

// what the programme form holds, kept across a change of language
let capture = null;

const text = (attrs) => h('input', { autocomplete: 'off', spellcheck: 'false', ...attrs });
const choice = (name) => h('select', {}, CHOICES[name].map((v) => h('option', { value: v, text: t(`loyalty.${name}.${v}`) })));

// shows errors { field: () => text } next to their fields (the banner for
// others), in the language of the moment
function showErrors(form, errors, banner) {
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const [f, make] of Object.entries(errors)) {
    const msg = make();
    const p = form.querySelector('#err-' + f);
    if (p) p.textContent = msg;
    else banner(msg);
    const el = form.querySelector('#f-' + f);
    if (el) el.setAttribute('aria-invalid', 'true');
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

// the engine's refusal next to the form's field for it (fieldOf: the
// API's field name to the form's, or null), else in the banner
function engineError(e, ctx, form, errors, fieldOf = (f) => f) {
  const f = e instanceof AdminError && e.field ? fieldOf(e.field) : null;
  if (f && form.querySelector('#err-' + f)) {
    errors[f] = () => t('form.engine_says', { message: e.apiMessage || e.reason });
  } else {
    ctx.showBanner(ctx.errorText(e));
  }
  showErrors(form, errors, ctx.showBanner);
}

// ---- tiers: name, threshold, multiplier, one row each ---------------------

function tierRow(tier, basis, cfg) {
  const spend = basis === 'spend';
  const row = h('div', { class: 'tier-row' },
    h('input', { class: 'tier-name', 'aria-label': t('loyalty.tier_name'), value: tier.name || '', maxlength: 64, spellcheck: 'false' }),
    h('input', { class: 'tier-threshold', 'aria-label': t(spend ? 'loyalty.tier_threshold_spend' : 'loyalty.tier_threshold', { symbol: currencySymbol(cfg.currency, locale()) }),
      inputmode: spend ? 'decimal' : 'numeric', value: tier.threshold ?? '' }),
    h('input', { class: 'tier-mult', 'aria-label': t('loyalty.tier_multiplier'), inputmode: 'numeric', value: tier.multiplier ?? '100' }),
    h('button', { type: 'button', class: 'tier-remove', text: t('loyalty.tier_remove'), onclick: () => row.remove() }));
  return row;
}

function parseTiers(s, basis, cfg) {
  return String(s || '').split(',').filter(Boolean).map((x) => {
    const [name, threshold, multiplier] = x.split(':');
    return { name, threshold: basis === 'spend' ? moneyField(threshold, cfg.currency) : threshold, multiplier };
  });
}

// the rows as the API's "name:threshold:percent" list, or an error key
function readTiers(box, basis, cfg) {
  const out = [];
  let last = -1;
  for (const row of box.querySelectorAll('.tier-row')) {
    const name = row.querySelector('.tier-name').value.trim();
    const th = row.querySelector('.tier-threshold').value.trim();
    const mult = row.querySelector('.tier-mult').value.trim();
    if (!name && !th) continue;
    if (!TIER_NAME.test(name)) return { error: 'loyalty.err_tier_name' };
    const v = basis === 'spend' ? parseMoney(th, cfg.currency) : (/^\d+$/.test(th) ? Number(th) : null);
    if (v === null) return { error: basis === 'spend' ? 'loyalty.err_tier_money' : 'loyalty.err_tier_points' };
    if (!/^\d+$/.test(mult)) return { error: 'loyalty.err_tier_multiplier' };
    if (out.length === 0 && v !== 0) return { error: 'loyalty.err_tier_first' };
    if (out.length && v <= last) return { error: 'loyalty.err_tier_order' };
    last = v;
    out.push(`${name}:${v}:${Number(mult)}`);
  }
  return { value: out.length ? out.join(',') : null };
}

// ---- the programme --------------------------------------------------------

function programmeForm(ctx, p, keep) {
  const { cfg } = ctx;
  const sym = currencySymbol(cfg.currency, locale());
  const tiersBox = h('div', { class: 'tiers', id: 'tiers' });
  const form = h('form', { id: 'programme-form', novalidate: true },
    h('fieldset', {}, h('legend', { text: t('loyalty.section_earn') }),
      h('div', { class: 'grid2' },
        field('status', t('loyalty.status'), choice('status')),
        field('every', t('loyalty.every', { symbol: sym }), text({ inputmode: 'decimal' }), t('loyalty.every_hint')),
        field('points', t('loyalty.points'), text({ inputmode: 'numeric' })),
        field('point_value', t('loyalty.point_value', { symbol: sym }), text({ inputmode: 'decimal' }), t('loyalty.point_value_hint')),
        field('events', t('loyalty.events'), text({}), t('loyalty.events_hint')),
        field('category_multipliers', t('loyalty.category_multipliers'), text({}), t('loyalty.multipliers_hint')),
        field('sku_multipliers', t('loyalty.sku_multipliers'), text({}), t('loyalty.multipliers_hint')),
        field('exclude_categories', t('loyalty.exclude_categories'), text({}), t('form.list_hint')),
        field('exclude_skus', t('loyalty.exclude_skus'), text({}), t('form.list_hint')),
        field('cap_order', t('loyalty.cap_order'), text({ inputmode: 'numeric' }), t('loyalty.cap_hint')),
        field('cap_day', t('loyalty.cap_day'), text({ inputmode: 'numeric' }), t('loyalty.cap_hint')))),
    h('fieldset', {}, h('legend', { text: t('loyalty.section_tiers') }),
      h('div', { class: 'tier-head', 'aria-hidden': 'true' },
        h('span', { text: t('loyalty.tier_name') }), h('span', { id: 'tier-threshold-head' }), h('span', { text: t('loyalty.tier_multiplier') }),
        h('span', { class: 'tier-pad', text: t('loyalty.tier_remove') })),
      tiersBox,
      h('button', { type: 'button', id: 'tier-add', text: t('loyalty.tier_add'), onclick: () => tiersBox.append(tierRow({}, form.elements.tier_basis.value, cfg)) }),
      h('p', { class: 'hint', text: t('loyalty.tiers_hint') }),
      h('p', { class: 'field-error', id: 'err-tiers', 'aria-live': 'polite' }),
      h('div', { class: 'grid2' },
        field('tier_basis', t('loyalty.tier_basis'), choice('tier_basis')),
        field('tier_period', t('loyalty.tier_period'), choice('tier_period')),
        field('tier_downgrade', t('loyalty.tier_downgrade'), choice('tier_downgrade')),
        field('tier_grace_days', t('loyalty.tier_grace_days'), text({ inputmode: 'numeric' })))),
    h('fieldset', {}, h('legend', { text: t('loyalty.section_expiry') }),
      h('div', { class: 'grid2' },
        field('pending_days', t('loyalty.pending_days'), text({ inputmode: 'numeric' })),
        field('expiry_months', t('loyalty.expiry_months'), text({ inputmode: 'numeric' }), t('loyalty.expiry_hint')),
        field('expiry_round', t('loyalty.expiry_round'), choice('expiry_round')),
        field('tz_offset', t('form.tz'), text({ maxlength: 6, placeholder: '+07:00' })),
        field('notify', t('loyalty.notify'), choice('notify')),
        field('notice_days', t('loyalty.notice_days'), text({ inputmode: 'numeric' })))),
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary big', id: 'save-programme', text: t('form.save') }),
      h('span', { id: 'programme-saved', class: 'hint', 'aria-live': 'polite' })));

  const basisHead = () => {
    $('#tier-threshold-head', form).textContent = form.elements.tier_basis.value === 'spend'
      ? t('loyalty.tier_threshold_spend', { symbol: sym }) : t('loyalty.tier_threshold');
  };
  // the values: what was typed (a redraw), else what is stored
  const v = keep ? keep.values : {
    ...Object.fromEntries(Object.keys(CHOICES).map((k) => [k, p[k] ?? CHOICES[k][0]])),
    ...Object.fromEntries(MONEY.map((k) => [k, p[k] === undefined ? '' : moneyField(p[k], cfg.currency)])),
    ...Object.fromEntries(INTS.map((k) => [k, p[k] === undefined ? '' : String(p[k])])),
    ...Object.fromEntries(LISTS.map((k) => [k, p[k] || ''])),
    tz_offset: p.tz_offset === undefined ? '' : tzText(p.tz_offset),
    tiers: parseTiers(p.tiers, p.tier_basis, cfg),
  };
  for (const [k, val] of Object.entries(v)) if (k !== 'tiers' && form.elements[k]) form.elements[k].value = val;
  for (const tier of v.tiers.length ? v.tiers : [{ name: 'base', threshold: '0', multiplier: '100' }]) {
    tiersBox.append(tierRow(tier, form.elements.tier_basis.value, cfg));
  }
  basisHead();
  form.elements.tier_basis.addEventListener('change', basisHead);

  const read = () => {
    const o = {};
    for (const el of form.querySelectorAll('input[name], select[name]')) o[el.name] = el.value;
    o.tiers = [...tiersBox.querySelectorAll('.tier-row')].map((r) => ({
      name: r.querySelector('.tier-name').value, threshold: r.querySelector('.tier-threshold').value,
      multiplier: r.querySelector('.tier-mult').value,
    }));
    return o;
  };
  const errors = { ...(keep ? keep.errors : {}) };
  showErrors(form, errors, ctx.showBanner);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const k of Object.keys(errors)) delete errors[k];
    ctx.showBanner('');
    $('#programme-saved').textContent = '';
    const body = {};
    for (const k of Object.keys(CHOICES)) body[k] = form.elements[k].value;
    for (const k of MONEY) {
      const s = form.elements[k].value.trim();
      if (s === '') continue;
      const m = parseMoney(s, cfg.currency);
      if (m === null) errors[k] = () => t('form.err_money');
      else body[k] = m;
    }
    for (const k of INTS) {
      const s = form.elements[k].value.trim();
      if (s === '') continue;
      if (!/^\d{1,15}$/.test(s)) errors[k] = () => t('form.err_integer');
      else body[k] = Number(s);
    }
    for (const k of LISTS) {
      const s = form.elements[k].value.split(',').map((x) => x.trim()).filter(Boolean).join(',');
      body[k] = s || null;
    }
    const tz = form.elements.tz_offset.value.trim();
    if (tz) body.tz_offset = tz;
    const tiers = readTiers(tiersBox, body.tier_basis, cfg);
    if (tiers.error) errors.tiers = () => t(tiers.error);
    else body.tiers = tiers.value;
    if (Object.keys(errors).length) { showErrors(form, errors, ctx.showBanner); return; }
    const save = $('#save-programme');
    save.disabled = true;
    try {
      const saved = await ctx.api.patch('loyalty/programme', body);
      programmeForm(ctx, saved);
      $('#programme-saved').textContent = t('admin.saved');
    } catch (e) {
      engineError(e, ctx, form, errors);
    } finally {
      save.disabled = false;
    }
  });

  $('#programme-slot').replaceChildren(form);
  capture = () => ({ p, values: read(), errors });
}

function tzText(min) {
  const a = Math.abs(Number(min));
  return (Number(min) < 0 ? '-' : '+') + String(Math.floor(a / 60)).padStart(2, '0') + ':' + String(a % 60).padStart(2, '0');
}

// ---- rewards --------------------------------------------------------------

function rewardList(ctx, items) {
  const { cfg } = ctx;
  const body = h('tbody', {}, items.map((r) => h('tr', { dataset: { id: r.id } },
    h('td', {}, h('a', { href: '#/loyalty/rewards/' + enc(r.id), text: r.id })),
    h('td', { text: r.name || '' }),
    h('td', { class: 'num', text: String(r.cost ?? '') }),
    h('td', { text: t('loyalty.kind.' + r.kind) === 'loyalty.kind.' + r.kind ? (r.kind || '') : t('loyalty.kind.' + r.kind) }),
    h('td', { text: r.campaign || r.sku || '' }),
    h('td', { class: 'num', text: r.stock === undefined ? '∞' : String(r.stock) }),
    h('td', { class: 'num', text: r.value === undefined ? '' : formatMoney(r.value, cfg.currency, locale()) }),
    h('td', { text: t('loyalty.status.' + (r.status || 'active')) }))));
  if (!items.length) body.append(h('tr', {}, h('td', { colspan: 8, text: t('admin.empty') })));
  return h('div', { class: 'table-wrap' }, h('table', { id: 'rewards' },
    h('thead', {}, h('tr', {}, ['id', 'name', 'cost', 'kind', 'campaign', 'stock', 'value', 'status']
      .map((k) => h('th', { class: ['cost', 'stock', 'value'].includes(k) ? 'num' : undefined,
        text: t('loyalty.reward_' + k, { symbol: currencySymbol(cfg.currency, locale()) }) })))),
    body));
}

async function rewardForm(ctx, id) {
  const { api, cfg } = ctx;
  const create = id === null;
  const sym = currencySymbol(cfg.currency, locale());
  const kind = h('select', {}, ['coupon', 'gift_card', 'item'].map((k) => h('option', { value: k, text: t('loyalty.kind.' + k) })));
  const form = h('form', { id: 'reward-form', novalidate: true },
    h('h1', { text: create ? t('loyalty.reward_new') : t('loyalty.reward_edit', { id }) }),
    h('fieldset', {}, h('div', { class: 'grid2' },
      create ? field('id', t('loyalty.reward_id'), text({ maxlength: 64 })) : null,
      field('name', t('loyalty.reward_name'), text({ maxlength: 200 })),
      field('status', t('loyalty.status'), choice('status')),
      field('cost', t('loyalty.reward_cost'), text({ inputmode: 'numeric' })),
      field('kind', t('loyalty.reward_kind'), kind),
      field('campaign', t('loyalty.reward_campaign'), text({ maxlength: 64 }), t('loyalty.reward_campaign_hint')),
      field('sku', t('loyalty.reward_sku'), text({ maxlength: 128 })),
      field('stock', t('loyalty.reward_stock'), text({ inputmode: 'numeric' }), t('loyalty.reward_stock_hint')),
      field('per_member', t('loyalty.reward_per_member'), text({ inputmode: 'numeric' }), t('form.limit_hint')),
      field('value', t('loyalty.reward_value', { symbol: sym }), text({ inputmode: 'decimal' })))),
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary big', id: 'save-reward', text: t('form.save') }),
      h('a', { class: 'button', href: '#/loyalty', text: t('form.cancel') })));
  ctx.shell('loyalty', form);
  const relabel = () => {
    const k = form.elements.kind.value;
    form.querySelector('[data-field="campaign"]').hidden = k === 'item';
    form.querySelector('[data-field="sku"]').hidden = k !== 'item';
  };
  kind.addEventListener('change', relabel);
  relabel();
  const errors = {};
  if (!create) {
    try {
      const r = await api.get('loyalty/rewards/' + enc(id));
      for (const k of ['name', 'status', 'kind', 'campaign', 'sku']) if (r[k] !== undefined) form.elements[k].value = r[k];
      for (const k of ['cost', 'stock', 'per_member']) if (r[k] !== undefined) form.elements[k].value = String(r[k]);
      if (r.value !== undefined) form.elements.value.value = moneyField(r.value, cfg.currency);
      relabel();
    } catch (e) { ctx.showBanner(ctx.errorText(e)); }
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const k of Object.keys(errors)) delete errors[k];
    ctx.showBanner('');
    const rid = create ? form.elements.id.value.trim() : id;
    if (!rid) errors.id = () => t('form.err_required');
    const body = { name: form.elements.name.value.trim(), status: form.elements.status.value, kind: form.elements.kind.value };
    if (!body.name) delete body.name;
    if (body.kind === 'item') body.sku = form.elements.sku.value.trim();
    else body.campaign = form.elements.campaign.value.trim();
    for (const k of ['cost', 'stock', 'per_member']) {
      const s = form.elements[k].value.trim();
      if (s === '') { if (k === 'stock' && !create) body.stock = null; continue; }
      if (!/^\d{1,15}$/.test(s)) errors[k] = () => t('form.err_integer');
      else body[k] = Number(s);
    }
    const val = form.elements.value.value.trim();
    if (val) {
      const m = parseMoney(val, cfg.currency);
      if (m === null) errors.value = () => t('form.err_money');
      else body.value = m;
    }
    if (Object.keys(errors).length) { showErrors(form, errors, ctx.showBanner); return; }
    try {
      await api.put('loyalty/rewards/' + enc(rid), body);
      location.hash = '#/loyalty';
    } catch (e) {
      engineError(e, ctx, form, errors, (f) => (f === 'reward' ? (create ? 'id' : null) : f));
    }
  });
}

export async function loyalty(ctx, parts, query, keep) {
  if (parts[1] === 'rewards' && parts[2]) {
    ctx.setRedraw(() => rewardForm(ctx, parts[2] === 'new' ? null : parts[2]));
    return rewardForm(ctx, parts[2] === 'new' ? null : parts[2]);
  }
  capture = null;
  ctx.setRedraw(() => loyalty(ctx, parts, query, capture ? capture() : null));
  const rewardsSlot = h('div', { id: 'rewards-slot' }, h('p', { text: t('admin.loading') }));
  ctx.shell('loyalty', h('section', {},
    h('h1', { text: t('loyalty.title') }),
    h('div', { class: 'card' }, h('h2', { text: t('loyalty.programme') }),
      h('div', { id: 'programme-slot' }, h('p', { text: t('admin.loading') }))),
    h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', { text: t('loyalty.rewards') }),
        h('a', { class: 'button', id: 'reward-new', href: '#/loyalty/rewards/new', text: t('loyalty.reward_new') })),
      rewardsSlot)));
  if (keep) {
    programmeForm(ctx, keep.p, keep);
  } else {
    let p = {};
    try {
      p = await ctx.api.get('loyalty/programme');
    } catch (e) {
      // no programme yet: the form starts empty, the first save sets it
      if (!(e instanceof AdminError && e.reason === 'not_found')) ctx.showBanner(ctx.errorText(e));
    }
    if (!$('#programme-slot')) return;
    programmeForm(ctx, p);
  }
  try {
    rewardsSlot.replaceChildren(rewardList(ctx, await ctx.api.all('loyalty/rewards', {}, 500)));
  } catch (e) {
    rewardsSlot.replaceChildren();
    ctx.showBanner(ctx.errorText(e));
  }
  document.body.dataset.drawn = 'loyalty';
}
