// Charts over days with the vendored uPlot (dashboard/vendor/uplot/): x is
// the day's index, labelled in the shop's zone and the reader's language;
// y is a count or money in minor units, labelled as the shop reads it.
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { formatMoney, minorDigits } from './money.js';

const COLOURS = ['#0b6e4f', '#1f5fa8', '#c2410c', '#7e22ce', '#b91c1c', '#0f766e', '#a16207', '#475569'];

// steps of the y axis: whole units (or whole baht) 1, 2, 5, 10, 20, 50...
function steps(unit) {
  const out = [];
  for (let p = unit; p < 1e15; p *= 10) out.push(p, 2 * p, 5 * p);
  return out;
}

// labels: the days' names, xLabel what they are; series: [{ label, values }]; money: a currency
// code when the values are minor units of it
export function dayChart(el, { labels, xLabel, series, money, locale, height = 240 }) {
  const yText = money
    ? (v) => (v === null || v === undefined ? '' : formatMoney(Math.round(v), money, locale))
    : (v) => (v === null || v === undefined ? '' : new Intl.NumberFormat(locale).format(v));
  const unit = money ? 10 ** minorDigits(money) : 1;
  const width = Math.max(260, Math.floor(el.getBoundingClientRect().width) || 600);
  const opts = {
    width,
    height,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max, unit) * 1.1] } },
    series: [
      { label: xLabel, value: (u, i) => (i === null ? '' : labels[i] ?? '') },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: true, size: 5 },
        value: (u, v) => yText(v),
      })),
    ],
    axes: [
      { incrs: [1, 2, 5, 7, 14], values: (u, splits) => splits.map((i) => labels[i] ?? ''), space: 64 },
      { incrs: steps(unit), values: (u, splits) => splits.map(yText), size: money ? 96 : 48 },
    ],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
  };
  const data = [labels.map((_, i) => i), ...series.map((s) => s.values)];
  el.replaceChildren();
  const plot = new uPlot(opts, data, el);
  // what was drawn, for readers of the page's data and the tests
  el.dataset.series = String(series.length);
  el.dataset.total = String(series.reduce((a, s) => a + s.values.reduce((b, v) => b + (v || 0), 0), 0));
  return plot;
}
