// The overview: today and the last 30 days over every campaign, from each
// campaign's report (GET /v1/campaigns/{c}/report?from&to, its "days"),
// and charts over those days per campaign.
import { t, locale } from './i18n.js';
import { formatMoney } from './money.js';
import { enc } from './admin.js';
import { dayChart } from './chart.js';
import { h, $ } from './dom.js';

// a count, grouped as the reader's language groups it
const n = (v) => new Intl.NumberFormat(locale()).format(v);

export const DAYS = 30;

// "YYYY-MM-DD" of an instant in a zone
export function dayIn(timeZone, ms = Date.now()) {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(new Date(ms));
}

export function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

// "7 Dec" / "7 ธ.ค." for a day name
export function dayLabel(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), { timeZone: 'UTC', day: 'numeric', month: 'short' })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

// (revenue - discount) / discount with two decimals, as the report's roi
export function roi(revenue, discount) {
  if (discount <= 0) return '–';
  const x = ((BigInt(revenue) - BigInt(discount)) * 100n) / BigInt(discount);
  const a = x < 0n ? -x : x;
  return (x < 0n ? '-' : '') + new Intl.NumberFormat(locale()).format(a / 100n)
    + '.' + String(a % 100n).padStart(2, '0');
}

function tile(id, label, value, raw) {
  return h('div', { class: 'tile', id, dataset: { value: String(raw) } },
    h('span', { class: 'tile-label', text: label }),
    h('span', { class: 'tile-value', text: value }));
}

function tiles(prefix, s, cfg) {
  const money = (v) => formatMoney(v, cfg.currency, locale());
  return h('div', { class: 'tiles' },
    tile(prefix + '-redemptions', t('overview.redemptions'), n(s.redemptions), s.redemptions),
    tile(prefix + '-discount', t('overview.discount'), money(s.discount), s.discount),
    tile(prefix + '-revenue', t('overview.revenue'), money(s.revenue), s.revenue),
    tile(prefix + '-roi', t('overview.roi'), roi(s.revenue, s.discount), roi(s.revenue, s.discount)),
    tile(prefix + '-sent', t('overview.sent'), n(s.sent), s.sent),
    s.issued !== undefined ? tile(prefix + '-issued', t('overview.issued'), n(s.issued), s.issued) : null);
}

const zero = () => ({ redemptions: 0, discount: 0, revenue: 0, sent: 0 });
function add(a, b) {
  a.redemptions += b.redemptions || 0;
  a.discount += b.discount || 0;
  a.revenue += b.revenue || 0;
  a.sent += b.sent || 0;
}

export async function overview(ctx) {
  const { api, cfg } = ctx;
  const today = dayIn(cfg.time_zone);
  const from = addDays(today, -(DAYS - 1));
  const days = Array.from({ length: DAYS }, (_, i) => addDays(from, i));
  const body = h('div', { id: 'overview-body', 'aria-busy': 'true' }, h('p', { text: t('admin.loading') }));
  ctx.shell('overview', h('section', {},
    h('h1', { text: t('nav.overview') }),
    h('p', { class: 'hint', id: 'overview-range',
      text: t('overview.range', { from: dayLabel(from), to: dayLabel(today), zone: cfg.time_zone }) }),
    body));

  let campaigns;
  const reports = [];
  try {
    campaigns = (await api.all('campaigns', {}, 200)).filter((c) => c.status !== 'archived');
    // a few at a time: each report reads the campaign's streams
    for (let i = 0; i < campaigns.length; i += 4) {
      reports.push(...await Promise.all(campaigns.slice(i, i + 4).map((c) =>
        api.get(`campaigns/${enc(c.id)}/report`, { from, to: today }))));
    }
  } catch (e) {
    body.replaceChildren();
    ctx.showBanner(ctx.errorText(e));
    return;
  }
  if (!$('#overview-body') || $('#overview-body') !== body) return;   // left meanwhile

  // the shop's currency only: amounts in others are not added to it
  const same = reports.filter((r) => (r.currency || cfg.currency) === cfg.currency);
  const todayS = zero();
  const month = { ...zero(), issued: 0 };
  const rows = [];
  for (const r of reports) {
    const byDay = new Map((r.days || []).map((d) => [d.day, d]));
    const s = zero();
    for (const d of days) if (byDay.has(d)) add(s, byDay.get(d));
    rows.push({ r, s, byDay });
    if (!same.includes(r)) continue;
    add(month, s);
    month.issued += r.issued || 0;
    if (byDay.has(today)) add(todayS, byDay.get(today));
  }

  const labels = days.map(dayLabel);
  const active = rows.filter((x) => x.s.redemptions || x.s.sent)
    .sort((a, b) => b.s.redemptions - a.s.redemptions).slice(0, 8);
  const perDay = (x, f) => days.map((d) => (x.byDay.has(d) ? x.byDay.get(d)[f] || 0 : 0));
  const sum = (f) => days.map((d) => same.reduce((a, r) => a + ((r.days || []).find((x) => x.day === d)?.[f] || 0), 0));

  const chartRedeem = h('div', { class: 'chart', id: 'chart-redemptions', role: 'img', 'aria-label': t('overview.chart_redemptions') });
  const chartMoney = h('div', { class: 'chart', id: 'chart-money', role: 'img', 'aria-label': t('overview.chart_money') });
  const table = h('tbody');
  for (const { r, s } of rows) {
    table.append(h('tr', { dataset: { id: r.campaign } },
      h('td', {}, h('a', { href: '#/reports/' + enc(r.campaign), text: r.name || r.campaign })),
      h('td', { class: 'num', text: n(s.redemptions) }),
      h('td', { class: 'num', text: formatMoney(s.discount, r.currency || cfg.currency, locale()) }),
      h('td', { class: 'num', text: formatMoney(s.revenue, r.currency || cfg.currency, locale()) }),
      h('td', { class: 'num', text: roi(s.revenue, s.discount) }),
      h('td', { class: 'num', text: n(s.sent) }),
      h('td', { class: 'num', text: n(r.issued || 0) })));
  }
  if (!rows.length) table.append(h('tr', {}, h('td', { colspan: 7, text: t('admin.empty') })));

  body.replaceChildren(
    h('div', { class: 'card' }, h('h2', { text: t('overview.today') }), tiles('ov-today', todayS, cfg)),
    h('div', { class: 'card' }, h('h2', { text: t('overview.last30', { days: DAYS }) }), tiles('ov-30', month, cfg),
      h('p', { class: 'hint', text: t('overview.issued_hint') })),
    h('div', { class: 'card' }, h('h2', { text: t('overview.chart_redemptions') }), chartRedeem),
    h('div', { class: 'card' }, h('h2', { text: t('overview.chart_money') }), chartMoney),
    h('div', { class: 'card' }, h('h2', { text: t('overview.per_campaign') }),
      h('div', { class: 'table-wrap' }, h('table', { id: 'overview-campaigns' },
        h('thead', {}, h('tr', {},
          h('th', { text: t('overview.col_campaign') }), h('th', { class: 'num', text: t('overview.redemptions') }),
          h('th', { class: 'num', text: t('overview.discount') }), h('th', { class: 'num', text: t('overview.revenue') }),
          h('th', { class: 'num', text: t('overview.roi') }), h('th', { class: 'num', text: t('overview.sent') }),
          h('th', { class: 'num', text: t('overview.issued') }))),
        table))));
  body.removeAttribute('aria-busy');

  dayChart(chartRedeem, {
    labels, xLabel: t('overview.day'), locale: locale(),
    series: active.length ? active.map((x) => ({ label: x.r.name || x.r.campaign, values: perDay(x, 'redemptions') }))
      : [{ label: t('overview.redemptions'), values: days.map(() => 0) }],
  });
  dayChart(chartMoney, {
    labels, xLabel: t('overview.day'), locale: locale(), money: cfg.currency,
    series: [{ label: t('overview.revenue'), values: sum('revenue') }, { label: t('overview.discount'), values: sum('discount') }],
  });
  document.body.dataset.drawn = 'overview';
}
