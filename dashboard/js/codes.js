// Codes: issue N as a job with a progress bar (cancel), import a CSV
// (the refused lines shown), export (a download), find a code and see its
// life (delivered, redeemed, rolled back, credited), disable or enable it,
// top up a gift card.  All through the admin API (docs/admin-api.md).
import { t, locale } from './i18n.js';
import { enc, AdminError } from './admin.js';
import { parseMoney } from './money.js';
import { h, $, clear } from './dom.js';
import {
  setError, clearErrors, engineError, rawCall, showCode, codePatterns, money, when,
  clock, table, fileOrText, draftGet, draftSet,
} from './kit.js';
import { field } from './field.js';

const POLL_MS = 400;
let watching = null;   // the job being followed: { id, stop }

function campaignSelect(id, campaigns, value) {
  return h('select', { id: 'f-' + id, name: id },
    h('option', { value: '', text: t('codes.pick_campaign') }),
    campaigns.map((c) => h('option', { value: c.id, selected: c.id === value, text: c.name ? `${c.name} (${c.id})` : c.id })));
}

// the job panel: a progress bar, done of total, rate and ETA, a cancel
export function jobPanel(ctx, job, onEnd) {
  const bar = h('progress', { id: 'job-bar', max: '1', value: '0', 'aria-label': t('codes.progress') });
  const line = h('p', { id: 'job-line', class: 'job-line', 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button', id: 'job-cancel', text: t('codes.cancel') });
  const errs = h('div', { id: 'job-errors' });
  const box = h('div', { class: 'card job', id: 'job', dataset: { id: job.id, state: job.state } },
    h('h2', { text: t('codes.job_title', { id: job.id, kind: t('codes.kind.' + job.kind) }) }), bar, line,
    h('div', { class: 'toolbar' }, cancel), errs);
  const draw = (j) => {
    box.dataset.state = j.state;
    box.dataset.done = String(j.done ?? 0);
    box.dataset.total = String(j.total ?? '');
    if (j.total) { bar.max = j.total; bar.value = j.done || 0; } else { bar.removeAttribute('value'); }
    const pct = j.total ? Math.floor((100 * (j.done || 0)) / j.total) : null;
    const parts = [t('codes.state.' + j.state)];
    if (j.total !== null && j.total !== undefined) {
      parts.push(t('codes.done_of', { done: (j.done || 0).toLocaleString(locale()), total: j.total.toLocaleString(locale()), pct }));
    }
    if (j.rate) parts.push(t('codes.rate', { rate: j.rate.toLocaleString(locale()) }));
    if (j.eta_s !== null && j.eta_s !== undefined && j.state === 'running') parts.push(t('codes.eta', { eta: clock(j.eta_s) }));
    line.textContent = parts.join(' · ');
    cancel.hidden = !['queued', 'running'].includes(j.state);
    clear(errs);
    if (j.reason && j.state === 'failed') errs.append(h('p', { class: 'field-error', id: 'job-reason', text: t('form.engine_says', { message: j.message || j.reason }) }));
    if (j.errors && j.errors.length) {
      errs.append(table('job-errors-table', [t('codes.line'), t('codes.problem')],
        j.errors.map((x) => h('tr', {}, h('td', { class: 'num', text: String(x.line) }), h('td', { text: x.message })))));
    }
  };
  draw(job);
  let stopped = false;
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try { draw(await ctx.api.del('jobs/' + enc(job.id))); } catch (e) { ctx.banner(ctx.errorText(e)); }
    cancel.disabled = false;
  });
  const tick = async () => {
    // a panel no longer on the screen stops asking (the codes screen shows
    // the job again when it is drawn)
    if (stopped || !box.isConnected) return;
    let j;
    try {
      j = await ctx.api.get('jobs/' + enc(job.id));
      ctx.banner('');
    } catch (e) {
      // a lost connection: say so, keep following
      ctx.banner(ctx.errorText(e));
      setTimeout(tick, POLL_MS * 3);
      return;
    }
    draw(j);
    if (['done', 'failed', 'cancelled'].includes(j.state)) { if (onEnd) onEnd(j, box); return; }
    setTimeout(tick, POLL_MS);
  };
  if (watching) watching.stop();
  watching = { id: job.id, stop: () => { stopped = true; } };
  setTimeout(tick, 50);
  return box;
}

// a job's output as a file to save
async function outputLink(ctx, j, box) {
  try {
    const r = await rawCall(ctx.cfg.admin_api, 'GET', `jobs/${enc(j.id)}/output`);
    const text = r.text ?? '';
    const type = r.type || 'text/plain';
    const ext = /csv/.test(type) ? 'csv' : /ndjson/.test(type) ? 'jsonl' : 'txt';
    const name = `${j.params && j.params.campaign || 'codes'}-${j.id}.${ext}`;
    const a = h('a', { class: 'button', id: 'job-download', download: name, text: t('codes.download', { name }) });
    a.href = URL.createObjectURL(new Blob([text], { type }));
    const lines = text.split('\n').filter(Boolean);
    const first = h('ol', { id: 'job-sample', class: 'codes-sample' }, lines.slice(0, 10).map((c) => h('li', { text: c })));
    box.append(h('div', { class: 'toolbar' }, a), lines.length ? first : null);
  } catch (e) { ctx.banner(ctx.errorText(e)); }
}

export async function codesScreen(ctx, parts, query) {
  if (parts[0]) return codePage(ctx, parts[0]);
  const keep = draftGet('codes') || {};
  const save = () => draftSet('codes', {
    issue_campaign: $('#f-issue_campaign').value, count: $('#f-count').value, pattern: $('#f-pattern').value,
    import_campaign: $('#f-import_campaign').value, import_text: $('#f-import_text').value,
    export_campaign: $('#f-export_campaign').value, export_format: $('#f-export_format').value,
    find: $('#f-find').value,
  });
  let campaigns = [];
  // a job's panel goes under the form that started it
  const slots = { 'codes.issue': h('div', { class: 'job-slot' }), 'codes.import': h('div', { class: 'job-slot' }),
    'codes.export': h('div', { class: 'job-slot' }) };
  const show = (job, onEnd) => {
    for (const x of Object.values(slots)) clear(x);
    if (slots[job.kind]) slots[job.kind].append(jobPanel(ctx, job, onEnd));
  };
  const section = h('section', { id: 'codes-screen' }, h('h1', { text: t('codes.title') }));
  ctx.shell(section);
  try {
    campaigns = await ctx.api.all('campaigns', {}, 500);
  } catch (e) {
    ctx.banner(ctx.errorText(e));
  }
  const input = (a) => h('input', { autocomplete: 'off', spellcheck: 'false', ...a });

  const find = h('form', { class: 'card', id: 'find-form', novalidate: true },
    h('h2', { text: t('codes.find_title') }),
    field('find', t('codes.find'), input({ value: keep.find || '', class: 'code-input' }), t('codes.find_hint')),
    h('button', { type: 'submit', class: 'primary', id: 'find-go', text: t('codes.find_go') }));
  find.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('#f-find').value.trim();
    if (!v) { setError('find', t('form.err_required')); return; }
    location.hash = '#/codes/' + enc(v);
  });

  const issue = h('form', { class: 'card', id: 'issue-form', novalidate: true },
    h('h2', { text: t('codes.issue_title') }),
    h('div', { class: 'grid2' },
      field('issue_campaign', t('codes.campaign'), campaignSelect('issue_campaign', campaigns, keep.issue_campaign)),
      field('count', t('codes.count'), input({ inputmode: 'numeric', value: keep.count || '' }), t('codes.count_hint')),
      field('pattern', t('codes.pattern'), input({ value: keep.pattern || '', placeholder: 'SALE-####-####' }), t('codes.pattern_hint'))),
    h('button', { type: 'submit', class: 'primary', id: 'issue-go', text: t('codes.issue_go') }), slots['codes.issue']);
  issue.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(issue);
    ctx.banner('');
    const campaign = $('#f-issue_campaign').value;
    const count = $('#f-count').value.trim().replace(/[,\s]/g, '');
    const pattern = $('#f-pattern').value.trim();
    let bad = false;
    if (!campaign) bad = setError('issue_campaign', t('form.err_required'));
    if (!/^\d+$/.test(count) || Number(count) < 1) bad = setError('count', t('codes.err_count'));
    if (bad) return;
    const body = { campaign, count: Number(count) };
    if (pattern) body.pattern = pattern;   // the engine reads the prefix and lengths from it
    try {
      const job = await ctx.api.post('jobs/codes/issue', body);
      show(job, (j, box) => { if (j.state !== 'failed') outputLink(ctx, j, box); });
    } catch (e) {
      if (!engineError(e, { campaign: 'issue_campaign', count: 'count', pattern: 'pattern', prefix: 'pattern', length: 'pattern', mac_length: 'pattern', '*': 'count' })) ctx.banner(ctx.errorText(e));
    }
  });

  const importForm = h('form', { class: 'card', id: 'import-form', novalidate: true },
    h('h2', { text: t('codes.import_title') }),
    field('import_campaign', t('codes.campaign'), campaignSelect('import_campaign', campaigns, keep.import_campaign), t('codes.import_campaign_hint')),
    field('import_file', t('codes.import_file'), h('input', { type: 'file', accept: '.csv,text/csv' })),
    field('import_text', t('codes.import_text'), h('textarea', { rows: 4, spellcheck: 'false' }), t('codes.import_hint')),
    h('button', { type: 'submit', class: 'primary', id: 'import-go', text: t('codes.import_go') }), slots['codes.import']);
  importForm.querySelector('#f-import_text').value = keep.import_text || '';
  importForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(importForm);
    ctx.banner('');
    const { body } = await fileOrText($('#f-import_file'), $('#f-import_text'));
    if (!body.trim()) { setError('import_text', t('form.err_required')); return; }
    try {
      const r = await rawCall(ctx.cfg.admin_api, 'POST', 'jobs/codes/import', {
        body, type: 'text/csv', query: { campaign: $('#f-import_campaign').value },
      });
      show(r.json);
    } catch (e) {
      if (!engineError(e, { campaign: 'import_campaign', '*': 'import_text' })) ctx.banner(ctx.errorText(e));
    }
  });

  const exportForm = h('form', { class: 'card', id: 'export-form', novalidate: true },
    h('h2', { text: t('codes.export_title') }),
    h('div', { class: 'grid2' },
      field('export_campaign', t('codes.campaign'), campaignSelect('export_campaign', campaigns, keep.export_campaign)),
      field('export_format', t('codes.format'), h('select', {},
        h('option', { value: 'csv', text: 'CSV' }), h('option', { value: 'jsonl', selected: keep.export_format === 'jsonl', text: 'JSON lines' })))),
    h('button', { type: 'submit', class: 'primary', id: 'export-go', text: t('codes.export_go') }), slots['codes.export']);
  exportForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(exportForm);
    ctx.banner('');
    const campaign = $('#f-export_campaign').value;
    if (!campaign) { setError('export_campaign', t('form.err_required')); return; }
    try {
      const job = await ctx.api.post('jobs/codes/export', { campaign, format: $('#f-export_format').value });
      show(job, (j, box) => { if (j.state === 'done') outputLink(ctx, j, box); });
    } catch (e) {
      if (!engineError(e, { campaign: 'export_campaign', format: 'export_format' })) ctx.banner(ctx.errorText(e));
    }
  });

  section.append(find, issue, importForm, exportForm);
  section.addEventListener('input', save);
  section.addEventListener('change', save);
  // a job under way goes on being shown after a redraw
  if (watching) {
    try {
      const j = await ctx.api.get('jobs/' + enc(watching.id));
      show(j, j.kind === 'members.import' ? undefined : (x, box) => { if (x.state === 'done') outputLink(ctx, x, box); });
    } catch { /* gone */ }
  }
}

// one code: its state, its life, its ledger, disable/enable, top-up
async function codePage(ctx, typed) {
  const section = h('section', { id: 'code-page' },
    h('div', { class: 'toolbar' }, h('h1', { class: 'code-title', id: 'code-title', text: typed }),
      h('a', { class: 'button', href: '#/codes', text: t('codes.back') })));
  ctx.shell(section);
  let c;
  try {
    c = await ctx.api.get('codes/' + enc(typed), { history: 200 });
  } catch (e) {
    if (e instanceof AdminError && e.reason === 'not_found') {
      section.append(h('p', { class: 'notice', id: 'code-missing', text: t('codes.not_found', { code: typed }) }));
    } else ctx.banner(ctx.errorText(e));
    return;
  }
  let camp = {};
  try { camp = await ctx.api.get('campaigns/' + enc(c.campaign)); } catch { /* shown without */ }
  const cur = camp.currency || ctx.cfg.currency;
  const patterns = await codePatterns(ctx.api);
  const shownAs = /[- ]/.test(typed) ? typed : showCode(c.code, patterns[c.campaign]);
  $('#code-title').textContent = shownAs;
  const gift = c.balance !== undefined && c.balance !== null;
  const dl = h('dl', { class: 'facts', id: 'code-facts' },
    h('dt', { text: t('codes.stored_as') }), h('dd', { class: 'mono', text: c.code }),
    h('dt', { text: t('codes.campaign') }), h('dd', {}, h('a', { href: '#/campaigns/' + enc(c.campaign), text: camp.name || c.campaign })),
    h('dt', { text: t('codes.status') }), h('dd', { id: 'code-status', text: t('codes.status.' + c.status) }),
    h('dt', { text: t('codes.used') }), h('dd', { text: c.max_uses ? `${c.used} / ${c.max_uses}` : String(c.used ?? 0) }),
    c.customer ? [h('dt', { text: t('codes.customer') }), h('dd', {}, h('a', { href: '#/members/' + enc(c.customer), text: c.customer }))] : null,
    gift ? [h('dt', { text: t('codes.balance') }), h('dd', { id: 'code-balance', text: money(c.balance, cur) }),
      h('dt', { text: t('codes.initial_balance') }), h('dd', { text: money(c.initial_balance, cur) })] : null,
    c.ends_at ? [h('dt', { text: t('codes.ends_at') }), h('dd', { text: when(c.ends_at, ctx.cfg.time_zone) })] : null);
  const toggle = h('button', { type: 'button', id: 'code-toggle',
    text: c.status === 'disabled' ? t('codes.enable') : t('codes.disable'), onclick: async () => {
      toggle.disabled = true;
      try {
        await ctx.api.post(`codes/${enc(typed)}/${c.status === 'disabled' ? 'enable' : 'disable'}`);
        ctx.redraw();
      } catch (e) { ctx.banner(ctx.errorText(e)); toggle.disabled = false; }
    } });
  section.append(h('div', { class: 'card' }, dl, h('div', { class: 'toolbar' }, toggle)));

  if (gift) {
    const dkey = 'credit.' + c.code;
    const keep = draftGet(dkey) || {};
    const form = h('form', { class: 'card', id: 'credit-form', novalidate: true },
      h('h2', { text: t('codes.credit_title') }),
      h('div', { class: 'grid2' },
        field('credit_amount', t('codes.credit_amount', { symbol: money(0, cur).replace(/[\d.,\s]/g, '') }),
          h('input', { inputmode: 'decimal', autocomplete: 'off', value: keep.amount || '' })),
        field('credit_note', t('codes.credit_note'), h('input', { autocomplete: 'off', maxlength: 200, value: keep.note || '' }))),
      h('button', { type: 'submit', class: 'primary', id: 'credit-go', text: t('codes.credit_go') }));
    // one ref per top-up typed: a retry after a lost answer is not a second top-up
    const ref = keep.ref || ('dash-' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8));
    const save = () => draftSet(dkey, { amount: $('#f-credit_amount').value, note: $('#f-credit_note').value, ref });
    form.addEventListener('input', save);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      ctx.banner('');
      save();
      const amount = parseMoney($('#f-credit_amount').value, cur);
      if (!amount) { setError('credit_amount', t('form.err_money')); return; }
      try {
        await ctx.api.post(`codes/${enc(typed)}/credit`, { amount, ref, note: $('#f-credit_note').value.trim() || undefined });
        draftSet(dkey, {});
        ctx.redraw();
      } catch (e) {
        if (!engineError(e, { amount: 'credit_amount', ref: 'credit_note', note: 'credit_note' })) ctx.banner(ctx.errorText(e));
      }
    });
    section.append(form);
  }

  // its life: deliveries of this code, then the audit trail's entries
  const life = [];
  try {
    for (const d of await ctx.api.all(`campaigns/${enc(c.campaign)}/deliveries`, {}, 5000)) {
      if (d.code && d.code === c.code && d.status === 'sent') {
        life.push({ at: Number(d.at), type: 'delivered', who: d.member, extra: d.channel });
      }
    }
  } catch { /* the trail alone */ }
  for (const x of c.history || []) {
    life.push({ at: Math.floor(Number(x.at) / 1000), type: x.type, who: x.customer, amount: x.amount,
      discount: x.discount, balance: x.balance, extra: x.order_id || x.ref || (x.type === 'credit' || x.type === 'debit' ? x.idem : '') || '' });
  }
  life.sort((a, b) => a.at - b.at);
  const rows = life.map((x) => h('tr', { dataset: { type: x.type } },
    h('td', { text: when(x.at, ctx.cfg.time_zone) }),
    h('td', { text: t('codes.life.' + x.type) === 'codes.life.' + x.type ? x.type : t('codes.life.' + x.type) }),
    h('td', { text: x.who || '' }),
    h('td', { class: 'num', text: x.amount !== undefined ? money(x.amount, cur) : '' }),
    h('td', { class: 'num', text: x.discount !== undefined ? money(x.discount, cur) : '' }),
    h('td', { class: 'num', text: x.balance !== undefined ? money(x.balance, cur) : '' }),
    h('td', { text: x.extra || '' })));
  section.append(h('div', { class: 'card' }, h('h2', { text: gift ? t('codes.ledger_title') : t('codes.life_title') }),
    table('code-life', [t('codes.when'), t('codes.what'), t('codes.customer'), { text: t('codes.amount'), num: 1 },
      { text: t('codes.discount'), num: 1 }, { text: t('codes.balance'), num: 1 }, t('codes.ref')], rows),
    c.history_complete === false ? h('p', { class: 'hint', text: t('codes.history_partial') }) : null));
}
