// Reports: a campaign's send history and funnel (who received, who came
// back and redeemed), per run, and its ROI (GET /v1/campaigns/{c}/report);
// the loyalty report (GET /v1/loyalty/report); what the gift cards still
// hold (GET /v1/reports/liability).
import { t, locale } from './i18n.js';
import { formatMoney } from './money.js';
import { formatTime } from './time.js';
import { enc } from './admin.js';
import { dayIn, addDays, roi, DAYS } from './overview.js';
import { h, $ } from './dom.js';

const n = (v) => new Intl.NumberFormat(locale()).format(v || 0);

// "2026-12-07T14:00:00+07:00" -> the shop's time, in the reader's words
function isoTime(s, cfg) {
  const ms = Date.parse(s || '');
  return Number.isNaN(ms) ? (s || '') : formatTime(ms / 1000, cfg.time_zone, locale());
}

function word(prefix, v) {
  const k = prefix + v;
  return t(k) === k ? v : t(k);
}

function funnel(r) {
  const steps = [
    ['issued', r.issued], ['delivered', r.delivered], ['came_back', r.came_back], ['redemptions', r.redemptions],
  ];
  const max = Math.max(1, ...steps.map((s) => s[1] || 0));
  return h('div', { class: 'funnel', id: 'funnel' }, steps.map(([k, v]) => h('div', { class: 'funnel-row', dataset: { step: k, value: String(v || 0) } },
    h('span', { class: 'funnel-label', text: t('reports.funnel_' + k) }),
    h('span', { class: 'funnel-bar' }, h('span', { class: 'funnel-fill', dataset: { pct: String(Math.round(100 * (v || 0) / max)) } })),
    h('span', { class: 'funnel-value', text: n(v) }))));
}

function dl(pairs) {
  return h('dl', { class: 'figures' }, pairs.flatMap(([k, v, id]) => [h('dt', { text: k }), h('dd', { id, text: v })]));
}

function table(id, head, rows, empty) {
  const body = h('tbody', {}, rows);
  if (!rows.length) body.append(h('tr', {}, h('td', { colspan: head.length, text: empty })));
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('thead', {}, h('tr', {}, head.map(([text, num]) => h('th', { class: num ? 'num' : undefined, text })))), body));
}

function campaignReport(r, cfg) {
  const cur = r.currency || cfg.currency;
  const m = (v) => formatMoney(v || 0, cur, locale());
  const runs = (r.runs || []).map((x) => h('tr', { dataset: { run: x.run } },
    h('td', { text: isoTime(x.at, cfg) }),
    ...['sent', 'failed', 'dead', 'skipped', 'cancelled', 'queued'].map((f) => h('td', { class: 'num', text: n(x[f]) }))));
  const people = (r.recipients || []).slice(0, 500).map((x) => h('tr', { dataset: { member: x.member } },
    h('td', { text: x.member }),
    h('td', { text: word('reports.status_', x.status) }),
    h('td', { text: x.channel || '' }),
    h('td', { class: 'code', text: (x.codes || (x.code ? [x.code] : [])).join(', ') }),
    h('td', { text: x.last_sent_at ? isoTime(x.last_sent_at, cfg) : '' }),
    h('td', { class: 'num', text: n(x.redemptions) }),
    h('td', { class: 'num', text: m(x.discount) }),
    h('td', { class: 'num', text: m(x.revenue) })));
  return h('div', { id: 'campaign-report', dataset: { campaign: r.campaign } },
    h('div', { class: 'card' }, h('h2', { text: t('reports.funnel') }), funnel(r),
      dl([[t('reports.redemption_rate'), r.redemption_rate, 'r-rate'], [t('reports.came_back_rate'), r.came_back_rate, 'r-back-rate'],
        [t('reports.failed'), n(r.failed), 'r-failed'], [t('reports.rollbacks'), n(r.rollbacks), 'r-rollbacks']])),
    h('div', { class: 'card' }, h('h2', { text: t('reports.money') }),
      dl([[t('overview.discount'), m(r.discount_given), 'r-discount'], [t('overview.revenue'), m(r.revenue), 'r-revenue'],
        [t('overview.roi'), roi(r.revenue || 0, r.discount_given || 0), 'r-roi']]),
      h('p', { class: 'hint', text: t('reports.roi_hint') })),
    h('div', { class: 'card' }, h('h2', { text: t('reports.runs') }),
      table('runs', [[t('reports.col_at')], [t('reports.col_sent'), 1], [t('reports.col_failed'), 1], [t('reports.col_dead'), 1],
        [t('reports.col_skipped'), 1], [t('reports.col_cancelled'), 1], [t('reports.col_queued'), 1]], runs, t('reports.no_runs'))),
    h('div', { class: 'card' }, h('h2', { text: t('reports.recipients', { count: n((r.recipients || []).length) }) }),
      table('recipients', [[t('reports.col_member')], [t('reports.col_status')], [t('reports.col_channel')], [t('reports.col_codes')],
        [t('reports.col_last_sent')], [t('overview.redemptions'), 1], [t('overview.discount'), 1], [t('overview.revenue'), 1]],
      people, t('admin.empty'))));
}

function loyaltyReport(lr) {
  const tiers = (lr.tiers || []).map((x) => h('tr', { dataset: { tier: x.tier } },
    h('td', { text: x.tier }), h('td', { class: 'num', text: n(x.members) })));
  return h('div', { class: 'card', id: 'loyalty-report' }, h('h2', { text: t('reports.loyalty') }),
    dl([[t('reports.points_earned'), n(lr.points_earned), 'l-earned'], [t('reports.points_spent'), n(lr.points_spent), 'l-spent'],
      [t('reports.points_expired'), n(lr.points_expired), 'l-expired'], [t('reports.points_active'), n(lr.points_active), 'l-active'],
      [t('reports.points_pending'), n(lr.points_pending), 'l-pending'], [t('reports.members'), n(lr.members), 'l-members']]),
    table('tiers', [[t('reports.col_tier')], [t('reports.members'), 1]], tiers, t('admin.empty')));
}

// "2026-12-31" as the language writes a day (Thai: the Buddhist era)
function dayText(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeZone: 'UTC' })
    .format(new Date(Date.UTC(y, m - 1, d, 12)));
}

// what the gift cards still hold: by campaign, by the age of the credit,
// by the day it ends
function liabilityReport(r, cfg) {
  const money = (x, v) => formatMoney(v, x.currency || cfg.currency, locale());
  const empty = t('admin.empty');
  return h('div', {},
    table('liability-campaigns', [[t('reports.col_campaign')], [t('reports.col_cards'), 1],
      [t('reports.col_outstanding'), 1], [t('reports.col_expiring'), 1]],
    r.campaigns.map((c) => h('tr', { dataset: { campaign: c.campaign } },
      h('td', {}, h('a', { href: '#/campaigns/' + enc(c.campaign), text: c.campaign })),
      h('td', { class: 'num', text: n(c.cards) }),
      h('td', { class: 'num', text: money(c, c.outstanding) }),
      h('td', { class: 'num', text: money(c, c.expiring) })))
      .concat(r.totals.map((x) => h('tr', { class: 'total' }, h('th', { text: t('reports.total') }),
        h('td', {}), h('td', { class: 'num', text: money(x, x.outstanding) }), h('td', {})))), empty),
    h('h3', { text: t('reports.by_age') }),
    table('liability-age', [[t('reports.col_age')], [t('reports.col_outstanding'), 1]],
      r.by_age.map((x) => h('tr', {}, h('td', { text: t('reports.age_' + x.age.replace(/-/g, '_')) }),
        h('td', { class: 'num', text: money(x, x.outstanding) }))), empty),
    h('h3', { text: t('reports.by_expiry') }),
    table('liability-expiry', [[t('reports.col_expires')], [t('reports.col_outstanding'), 1]],
      r.by_expiry.map((x) => h('tr', {}, h('td', { text: x.expires_on ? dayText(x.expires_on) : t('reports.never') }),
        h('td', { class: 'num', text: money(x, x.outstanding) }))), empty));
}

export async function reports(ctx, parts, query) {
  const { api, cfg } = ctx;
  const today = dayIn(cfg.time_zone);
  const id = parts[1] || '';
  const from = query.from || addDays(today, -(DAYS - 1));
  const to = query.to || today;
  const pick = h('select', { id: 'r-campaign', 'aria-label': t('reports.campaign') }, h('option', { value: '', text: '—' }));
  const fromIn = h('input', { id: 'r-from', type: 'date', value: from, 'aria-label': t('reports.from') });
  const toIn = h('input', { id: 'r-to', type: 'date', value: to, 'aria-label': t('reports.to') });
  const out = h('div', { id: 'report-body' });
  const loyalty = h('div', { id: 'loyalty-slot' });
  const liability = h('div', { id: 'liability' }, h('p', { text: t('admin.loading') }));
  const form = h('form', { class: 'toolbar', id: 'report-form' },
    h('label', { class: 'inline', for: 'r-campaign', text: t('reports.campaign') }), pick,
    h('label', { class: 'inline', for: 'r-from', text: t('reports.from') }), fromIn,
    h('label', { class: 'inline', for: 'r-to', text: t('reports.to') }), toIn,
    h('button', { type: 'submit', class: 'primary', text: t('reports.show') }));
  ctx.shell('reports', h('section', {},
    h('h1', { text: t('nav.reports') }), form, out, loyalty,
    h('div', { class: 'card', id: 'giftcard-liability' }, h('h2', { text: t('reports.liability') }),
      h('p', { class: 'hint', text: t('reports.liability_hint') }), liability)));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (fromIn.value) p.set('from', fromIn.value);
    if (toIn.value) p.set('to', toIn.value);
    location.hash = '#/reports/' + enc(pick.value) + ([...p].length ? '?' + p : '');
  });

  try {
    const campaigns = await api.all('campaigns', {}, 500);
    for (const c of campaigns) pick.append(h('option', { value: c.id, selected: c.id === id, text: c.name ? `${c.name} (${c.id})` : c.id }));
  } catch (e) {
    ctx.showBanner(ctx.errorText(e));
  }

  const jobs = [api.get('loyalty/report').then((lr) => loyalty.replaceChildren(loyaltyReport(lr))),
    api.get('reports/liability').then((r) => liability.replaceChildren(liabilityReport(r, cfg)),
      (e) => { liability.replaceChildren(); throw e; })];
  if (id) {
    out.append(h('p', { text: t('admin.loading') }));
    jobs.push(api.get(`campaigns/${enc(id)}/report`, { from, to })
      .then((r) => out.replaceChildren(campaignReport(r, cfg))));
  } else {
    out.append(h('p', { class: 'notice', text: t('reports.pick') }));
  }
  const done = await Promise.allSettled(jobs);
  const bad = done.find((x) => x.status === 'rejected');
  if (bad) {
    if (id && !$('#campaign-report')) out.replaceChildren();
    ctx.showBanner(ctx.errorText(bad.reason));
  }
  for (const f of document.querySelectorAll('.funnel-fill')) f.style.width = f.dataset.pct + '%';
  document.body.dataset.drawn = 'reports';
}
