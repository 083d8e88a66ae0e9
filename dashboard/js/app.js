// The marketers' dashboard: log in with the admin token, then campaigns
// (list, create, edit, pause, resume, archive) over the admin API.  The
// screens that need what the admin API does not serve yet say so.
import { initLang, setLang, getLang, t, locale, applyI18n, onLang } from './i18n.js';
import { loadConfig } from './config.js';
import { formatMoney, currencySymbol } from './money.js';
import { zoneOffset } from './time.js';
import { createClient, getToken, setToken, AdminError, enc } from './admin.js';
import { formToCampaign, campaignToForm, KINDS, MONEY_VALUE, PERIODS } from './campaign-form.js';
import { h, clear, $ } from './dom.js';
import { field } from './field.js';
import { draftGet, draftSet, draftDel, setError, clearErrors } from './kit.js';
// screens in their own files: overview, reports, loyalty (f(ctx, parts,
// query) with viewContext below); codes, members, segments, automations
// (f(ctx, path parts after the screen, query))
import { overview } from './overview.js';
import { reports } from './reports.js';
import { loyalty } from './loyalty.js';
import { codesScreen } from './codes.js';
import { membersScreen } from './members.js';
import { segmentsScreen } from './segments.js';
import { automationsScreen } from './automations.js';

let cfg;
let api;
let redraw = () => {};

const SCREENS = ['overview', 'campaigns', 'codes', 'members', 'segments', 'automations', 'reports', 'loyalty'];
const OWN = { codes: codesScreen, members: membersScreen, segments: segmentsScreen, automations: automationsScreen };

// a failed call as a sentence
function errorText(e) {
  if (!(e instanceof AdminError)) return t('net.offline');
  if (e.kind === 'offline') return t('net.offline');
  if (e.kind === 'unavailable' && !e.reason) return t('admin.unreachable', { status: e.status });
  if (e.reason === 'store_unavailable') return t('net.unavailable');
  if (e.reason === 'unauthorized') return t('login.bad_token');
  return t('form.engine_says', { message: e.apiMessage || e.reason });
}

function bannerEl() { return h('div', { id: 'banner', class: 'banner', role: 'alert', hidden: true }); }
function showBanner(text) {
  const b = $('#banner');
  if (!b) return;
  b.textContent = text || '';
  b.hidden = !text;
}

function langButton() {
  return h('button', { type: 'button', id: 'lang', class: 'lang', text: t('lang.switch'),
    onclick: () => setLang(getLang() === 'th' ? 'en' : 'th') });
}

// ---- log in -------------------------------------------------------------

let loginError = null;

function login(root, why) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', spellcheck: 'false',
    'aria-describedby': 'token-hint err-token' });
  const err = h('p', { id: 'err-token', class: 'field-error', 'aria-live': 'polite', text: why || '' });
  const form = h('form', { class: 'card login', id: 'login', novalidate: true },
    h('div', { class: 'toolbar' }, h('h1', { text: t('login.title') }), langButton()),
    bannerEl(),
    h('div', { class: 'field' },
      h('label', { for: 'token', text: t('login.token') }), input,
      h('p', { id: 'token-hint', class: 'hint', text: t('login.token_hint') }), err),
    h('button', { type: 'submit', class: 'primary big', id: 'login-submit', text: t('login.submit') }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tok = input.value.trim();
    err.textContent = '';
    loginError = null;
    showBanner('');
    if (!tok) { err.textContent = t('form.err_required'); return; }
    setToken(tok);
    try {
      await api.get('campaigns', { limit: 1 });
      location.hash = '#/campaigns';
      route();
    } catch (e) {
      if (e instanceof AdminError && e.reason === 'unauthorized') {
        setToken('');
        err.textContent = t('login.bad_token');
      } else {
        // the token may be right; keep it typed, keep nothing stored
        setToken('');
        loginError = e;
        showBanner(errorText(e));
      }
    }
  });
  clear(root).append(h('main', {}, form));
  // a change of language draws the form again, with what was typed
  redraw = () => {
    const keep = $('#token').value;
    const bad = err.textContent ? t('login.bad_token') : '';
    login(root, bad);
    $('#token').value = keep;
    if (loginError) showBanner(errorText(loginError));
  };
}

// ---- the shell ----------------------------------------------------------

function shell(root, screen, content) {
  const links = SCREENS.map((s) => h('li', {}, h('a', {
    href: '#/' + s, 'aria-current': s === screen ? 'page' : undefined, text: t('nav.' + s),
  })));
  links.push(h('li', {}, h('a', { href: 'sheet/', text: t('nav.sheet') })));
  links.push(h('li', {}, h('a', { href: 'store/', text: t('nav.store') })));
  const nav = h('nav', { 'aria-label': t('nav.menu') },
    h('div', { class: 'brand', text: t('app.title') }),
    h('ul', {}, links),
    h('div', { class: 'nav-foot' }, langButton(),
      h('button', { type: 'button', id: 'logout', text: t('nav.logout'), onclick: () => {
        setToken('');
        location.hash = '#/login';
        route();
      } })));
  const main = h('main', { id: 'main' }, bannerEl(), content);
  clear(root).append(h('div', { class: 'app' }, nav, main));
}

// ---- campaigns ----------------------------------------------------------

function statusText(s) { return t('status.' + s) === 'status.' + s ? s : t('status.' + s); }

async function campaignList(root, query) {
  const q = h('input', { id: 'q', type: 'search', value: query.q || '', placeholder: t('campaigns.search'),
    'aria-label': t('campaigns.search') });
  const st = h('select', { id: 'status', 'aria-label': t('campaigns.col_status') },
    h('option', { value: '', text: '—' }),
    ...['active', 'paused', 'archived'].map((s) => h('option', { value: s, selected: query.status === s, text: statusText(s) })));
  const body = h('tbody');
  const table = h('div', { class: 'table-wrap' }, h('table', { id: 'campaigns' },
    h('thead', {}, h('tr', {},
      h('th', { text: t('campaigns.col_id') }), h('th', { text: t('campaigns.col_name') }),
      h('th', { text: t('campaigns.col_kind') }), h('th', { text: t('campaigns.col_status') }),
      h('th', { class: 'num', text: t('campaigns.col_redeemed') }), h('th', { class: 'num', text: t('campaigns.col_discount') }),
      h('th', {}))),
    body));
  const content = h('section', {},
    h('div', { class: 'toolbar' }, h('h1', { text: t('campaigns.title') }),
      h('a', { class: 'button primary', href: '#/campaigns/new', id: 'new', text: t('campaigns.new') })),
    h('form', { class: 'toolbar', id: 'filter' }, q, st, h('button', { type: 'submit', text: t('campaigns.search') })),
    table);
  shell(root, 'campaigns', content);
  $('#filter').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (q.value.trim()) p.set('q', q.value.trim());
    if (st.value) p.set('status', st.value);
    location.hash = '#/campaigns' + ([...p].length ? '?' + p : '');
  });
  body.append(h('tr', {}, h('td', { colspan: 7, text: t('admin.loading') })));
  let items;
  try {
    items = await api.all('campaigns', { q: query.q, status: query.status }, 500);
  } catch (e) {
    clear(body);
    showBanner(errorText(e));
    return;
  }
  clear(body);
  if (!items.length) body.append(h('tr', {}, h('td', { colspan: 7, text: t('admin.empty') })));
  for (const c of items) {
    const act = (op) => h('button', { type: 'button', text: t('campaigns.' + op), onclick: async () => {
      try {
        await api.post(`campaigns/${enc(c.id)}/${op}`);
        route();
      } catch (e) { showBanner(errorText(e)); }
    } });
    body.append(h('tr', { dataset: { id: c.id } },
      h('td', {}, h('a', { href: '#/campaigns/' + enc(c.id), text: c.id })),
      h('td', { text: c.name || '' }),
      h('td', { text: t('kind.' + c.kind) }),
      h('td', { text: statusText(c.status) }),
      h('td', { class: 'num', text: String(c.redeemed ?? 0) }),
      h('td', { class: 'num', text: formatMoney(c.discount_given ?? 0, c.currency || cfg.currency, locale()) }),
      h('td', {}, c.status === 'active' ? act('pause') : c.status === 'paused' ? act('resume') : null,
        c.status !== 'archived' ? act('archive') : null)));
  }
}

function campaignForm(root, id, keep) {
  const create = id === null;
  const dkey = 'campaign.' + (create ? '+new' : id);
  const sym = () => currencySymbol(($('#f-currency') && $('#f-currency').value.trim().toUpperCase()) || cfg.currency, locale());
  const input = (attrs) => h('input', { autocomplete: 'off', ...attrs });
  const kind = h('select', {}, ...KINDS.map((k) => h('option', { value: k, text: t('form.kind.' + k) })));
  const dayBoxes = [1, 2, 3, 4, 5, 6, 7].map((d) => h('label', {},
    h('input', { type: 'checkbox', name: 'days', value: String(d), id: 'f-day-' + d }), t('form.day.' + d)));
  const valueLabel = h('label', { for: 'f-value' });
  const valueField = h('div', { class: 'field', dataset: { field: 'value' } }, valueLabel,
    input({ id: 'f-value', name: 'value', inputmode: 'decimal', 'aria-describedby': 'err-value' }),
    h('p', { class: 'field-error', id: 'err-value', 'aria-live': 'polite' }));
  const money = (n, label) => field(n, t(label, { symbol: '¤' }), input({ inputmode: 'decimal' }), t('form.limit_hint'));
  const period = () => h('select', {}, ...PERIODS.map((p) => h('option', { value: p, text: t('form.period.' + p) })));

  const form = h('form', { id: 'campaign-form', novalidate: true },
    h('h1', { text: create ? t('form.title_new') : t('form.title_edit', { id }) }),
    h('fieldset', {}, h('legend', { text: t('form.section_what') }),
      h('div', { class: 'grid2' },
        create ? field('id', t('form.id'), input({ maxlength: 64, spellcheck: 'false' }), t('form.id_hint')) : null,
        field('name', t('form.name'), input({ maxlength: 200 })),
        field('kind', t('form.kind'), kind),
        valueField,
        money('cap', 'form.cap'),
        field('free_sku', t('form.free_sku'), input({ maxlength: 128 })),
        field('currency', t('form.currency'), input({ maxlength: 3, value: cfg.currency, autocapitalize: 'characters' })))),
    h('fieldset', {}, h('legend', { text: t('form.section_when') }),
      h('div', { class: 'grid2' },
        field('starts_at', t('form.starts_at'), input({ type: 'datetime-local', step: 1 })),
        field('ends_at', t('form.ends_at'), input({ type: 'datetime-local', step: 1 }))),
      h('div', { class: 'field', dataset: { field: 'days' } },
        h('span', { class: 'label', id: 'days-label', text: t('form.days') }),
        h('div', { class: 'days', role: 'group', 'aria-labelledby': 'days-label' }, dayBoxes),
        h('p', { class: 'hint', text: t('form.days_hint') }),
        h('p', { class: 'field-error', id: 'err-days' })),
      h('div', { class: 'grid2' },
        field('hours_from', t('form.hours_from'), input({ type: 'time' })),
        field('hours_to', t('form.hours_to'), input({ type: 'time' }))),
      h('p', { class: 'hint', text: t('form.hours_hint') }),
      h('p', { class: 'field-error', id: 'err-hours' }),
      field('tz_offset', t('form.tz'), input({ maxlength: 6, placeholder: '+07:00' }))),
    h('fieldset', {}, h('legend', { text: t('form.section_limits') }),
      h('div', { class: 'grid2' },
        field('max_redemptions', t('form.max_redemptions'), input({ inputmode: 'numeric' }), t('form.limit_hint')),
        money('max_discount', 'form.max_discount'),
        field('per_customer', t('form.per_customer'), input({ inputmode: 'numeric' }), t('form.limit_hint')),
        field('per_customer_code', t('form.per_customer_code'), input({ inputmode: 'numeric' }), t('form.limit_hint')),
        field('code_max_uses', t('form.code_max_uses'), input({ inputmode: 'numeric' }), t('form.limit_hint')))),
    h('fieldset', {}, h('legend', { text: t('form.section_order') }),
      h('div', { class: 'grid2' },
        money('min_amount', 'form.min_amount'),
        field('include_skus', t('form.include_skus'), input({}), t('form.list_hint')),
        field('exclude_skus', t('form.exclude_skus'), input({}), t('form.list_hint')),
        field('include_categories', t('form.include_categories'), input({}), t('form.list_hint')),
        field('exclude_categories', t('form.exclude_categories'), input({}), t('form.list_hint')))),
    h('fieldset', {}, h('legend', { text: t('form.section_rules') }),
      h('div', { class: 'grid2' },
        field('steps', t('form.steps', { symbol: '¤' }), input({}), t('form.steps_hint')),
        field('buy_qty', t('form.buy_qty'), input({ inputmode: 'numeric' })),
        field('get_qty', t('form.get_qty'), input({ inputmode: 'numeric' })),
        field('uses_max', t('form.uses_max'), input({ inputmode: 'numeric' }), t('form.limit_hint')),
        field('uses_period', t('form.period'), period()),
        money('amount_max', 'form.amount_max'),
        field('amount_period', t('form.period'), period()),
        money('customer_amount_max', 'form.customer_amount_max')),
      field('conditions', t('form.conditions'), input({ spellcheck: 'false' }), t('form.conditions_hint'))),
    h('div', { class: 'toolbar' },
      h('button', { type: 'submit', class: 'primary big', id: 'save', text: t('form.save') }),
      h('a', { class: 'button', href: '#/campaigns', text: t('form.cancel') })));

  shell(root, 'campaigns', form);

  // the labels that name the currency or the kind
  const relabel = () => {
    const k = $('#f-kind').value;
    valueLabel.textContent = t('form.value.' + k, { symbol: sym() });
    for (const [n, key] of [['cap', 'form.cap'], ['max_discount', 'form.max_discount'], ['min_amount', 'form.min_amount'],
      ['amount_max', 'form.amount_max'], ['customer_amount_max', 'form.customer_amount_max'],
      ['steps', 'form.steps']]) {
      form.querySelector(`label[for="f-${n}"]`).textContent = t(key, { symbol: sym() });
    }
    form.querySelector('[data-field="free_sku"]').hidden = k !== 'free_item';
    form.querySelector('[data-field="steps"]').hidden = k !== 'steps';
    for (const f of ['buy_qty', 'get_qty']) form.querySelector(`[data-field="${f}"]`).hidden = k !== 'buy_x_get_y';
    form.querySelector('[data-field="value"]').hidden = k === 'steps' || k === 'free_shipping';
    form.querySelector('[data-field="cap"]').hidden = k === 'gift_card';
    $('#f-value').inputMode = MONEY_VALUE.has(k) || k === 'percent' ? 'decimal' : 'numeric';
  };

  const read = () => {
    const v = {};
    for (const el of form.querySelectorAll('input[name], select[name]')) {
      if (el.name === 'days') continue;
      v[el.name] = el.value;
    }
    v.days = [...form.querySelectorAll('input[name="days"]:checked')].map((x) => x.value);
    return v;
  };
  const write = (v) => {
    for (const [k, val] of Object.entries(v)) {
      if (k === 'days') {
        for (const b of form.querySelectorAll('input[name="days"]')) b.checked = val.includes(b.value);
      } else if (form.elements[k]) {
        form.elements[k].value = val;
      }
    }
  };
  const errors = {};
  const showErrors = () => {
    clearErrors(form);
    for (const [f, make] of Object.entries(errors)) {
      const text = make();
      if (!setError(f, text)) showBanner(text);
    }
  };

  $('#f-kind').addEventListener('change', relabel);
  $('#f-currency').addEventListener('input', relabel);
  form.addEventListener('input', () => draftSet(dkey, read()));
  form.addEventListener('change', () => draftSet(dkey, read()));

  let lastError = null;
  redraw = () => campaignForm(root, id, { values: read(), errors: { ...errors }, lastError });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const k of Object.keys(errors)) delete errors[k];
    lastError = null;
    showBanner('');
    const { body, errors: local } = formToCampaign(read(), { create });
    for (const [f, key] of Object.entries(local)) errors[f] = () => t(key);
    showErrors();
    if (Object.keys(local).length) {
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
      return;
    }
    const save = $('#save');
    save.disabled = true;
    save.textContent = t('form.saving');
    try {
      if (create) await api.post('campaigns', body);
      else await api.patch('campaigns/' + enc(id), body);
      draftDel(dkey);
      location.hash = '#/campaigns';
    } catch (e) {
      // the engine's reason next to its field; nothing typed is lost
      if (e instanceof AdminError && e.field) {
        const f = e.field.replace(/^.*\./, '');
        const sub = f === 'hours' ? 'hours' : f;
        errors[sub] = () => t('form.engine_says', { message: e.apiMessage || e.reason });
        showErrors();
      } else {
        lastError = e;
        showBanner(errorText(e));
      }
    } finally {
      save.disabled = false;
      save.textContent = t('form.save');
    }
  });

  // a draft kept in this tab wins over what the server has
  const draft = draftGet(dkey);
  if (keep) {
    write(keep.values);
    relabel();
    Object.assign(errors, keep.errors);
    showErrors();
    lastError = keep.lastError;
    if (lastError) showBanner(errorText(lastError));
  } else if (draft) {
    write(draft);
    relabel();
  } else if (!create) {
    relabel();
    api.get('campaigns/' + enc(id)).then((c) => {
      write(campaignToForm(c, { tzOffset: zoneOffset(cfg.time_zone) }));
      relabel();
    }).catch((e) => showBanner(errorText(e)));
  } else {
    write({ tz_offset: campaignToForm({}, { tzOffset: zoneOffset(cfg.time_zone) }).tz_offset });
    relabel();
  }
}

// ---- screens in their own files -----------------------------------------

// what a screen file gets: the client, the configuration, the shell, the
// banner, and the redraw a change of language calls
const VIEWS = { overview, reports, loyalty };
function viewContext(root) {
  return {
    api, cfg, showBanner, errorText,
    shell: (screen, content) => shell(root, screen, content),
    setRedraw: (f) => { redraw = f; },
  };
}

// ---- routing ------------------------------------------------------------

function route() {
  const root = $('#app');
  const [path, qs] = (location.hash.replace(/^#/, '') || '/campaigns').split('?');
  const query = Object.fromEntries(new URLSearchParams(qs || ''));
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  document.body.dataset.screen = parts[0] || '';
  if (!getToken()) {
    document.body.dataset.screen = 'login';
    login(root);
    return;
  }
  const screen = parts[0] || 'campaigns';
  if (screen === 'campaigns' && parts[1] === 'new') campaignForm(root, null);
  else if (screen === 'campaigns' && parts[1]) campaignForm(root, parts[1]);
  else if (screen === 'campaigns') {
    redraw = () => campaignList(root, query);
    campaignList(root, query);
  } else if (OWN[screen]) {
    const ctx = {
      api, cfg, banner: showBanner, errorText,
      shell: (content) => shell(root, screen, content),
      redraw: () => redraw(),
    };
    redraw = () => OWN[screen](ctx, parts.slice(1), query);
    redraw();
  } else if (VIEWS[screen]) {
    delete document.body.dataset.drawn;
    redraw = () => VIEWS[screen](viewContext(root), parts, query);
    VIEWS[screen](viewContext(root), parts, query);
  } else {
    location.hash = '#/campaigns';
  }
  applyI18n(document);
}

async function main() {
  cfg = await loadConfig(new URL('../', import.meta.url));
  initLang(cfg.language);
  // a token refused later (revoked, a new tokens file): back to the log-in
  api = createClient(cfg.admin_api, () => {
    setToken('');
    if (document.body.dataset.screen !== 'login') route();
  });
  onLang(() => { redraw(); applyI18n(document); });
  window.addEventListener('hashchange', route);
  route();
  document.body.dataset.ready = '1';
}

main();
