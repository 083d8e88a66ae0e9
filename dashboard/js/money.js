// Money as the shop reads it: integers in minor units in, "฿1,200.00" out.
// No floating point: the decimal string is built from the integer, and
// Intl.NumberFormat formats that string exactly.

// minor digits of a currency (THB 2, JPY 0, BHD 3), as Intl knows them
export function minorDigits(currency) {
  return new Intl.NumberFormat('en', { style: 'currency', currency })
    .resolvedOptions().maximumFractionDigits;
}

// 120000 -> "1200.00" for 2 digits (a string; minor may be a number or a
// bigint)
export function minorToDecimal(minor, digits) {
  let v = BigInt(minor);
  const neg = v < 0n;
  if (neg) v = -v;
  let s = v.toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, '0');
    s = s.slice(0, -digits) + '.' + s.slice(-digits);
  }
  return (neg ? '-' : '') + s;
}

export function formatMoney(minor, currency, locale) {
  if (minor === undefined || minor === null || minor === '') return '';
  const cur = currency || 'THB';
  const d = minorDigits(cur);
  let v = BigInt(minor);
  const neg = v < 0n;
  if (neg) v = -v;
  const scale = 10n ** BigInt(d);
  const whole = v / scale;
  const frac = d ? new Intl.NumberFormat(locale || 'en', { minimumIntegerDigits: d, useGrouping: false })
    .format(v % scale) : '';
  const opts = { style: 'currency', currency: cur, currencyDisplay: 'narrowSymbol',
    minimumFractionDigits: d, maximumFractionDigits: d };
  // the locale's pattern (sign, symbol, separators) from a template, the
  // digits from BigInts: exact for any safe integer, in any engine
  const grouped = new Intl.NumberFormat(locale || 'en', { maximumFractionDigits: 0 }).format(whole);
  let done = false;
  return new Intl.NumberFormat(locale || 'en', opts).formatToParts(neg ? -1n : 1n).map((p) => {
    if (p.type === 'integer') {
      if (done) return '';
      done = true;
      return grouped;
    }
    if (p.type === 'group') return '';
    if (p.type === 'fraction') return frac;
    return p.value;
  }).join('');
}

// the currency's sign alone: "฿", "¥", "$"
export function currencySymbol(currency, locale) {
  const p = new Intl.NumberFormat(locale || 'en', {
    style: 'currency', currency, currencyDisplay: 'narrowSymbol',
  }).formatToParts(0).find((x) => x.type === 'currency');
  return p ? p.value : currency;
}

// what staff type: "1200", "1,200", "1,200.5", "฿ 1,200.00" -> minor units
// as a Number (a safe integer), or null when it is not an amount
export function parseMoney(text, currency) {
  const d = minorDigits(currency || 'THB');
  // a currency sign or code before the number is allowed, a minus is not
  const s = String(text ?? '').trim().replace(/^(?:[A-Za-z]{3}|[^\d\s.,+-])\s*/, '')
    .replace(/\s+/g, '');
  if (s === '') return null;
  const m = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return null;
  const whole = m[1].replace(/,/g, '');
  const frac = m[2] ?? '';
  if (frac.length > d) return null;
  const v = BigInt(whole) * 10n ** BigInt(d) + BigInt((frac + '0'.repeat(d)).slice(0, d) || '0');
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(v);
}

// minor units back to what a form field shows: 120000 -> "1200.00"
export function moneyField(minor, currency) {
  if (minor === undefined || minor === null) return '';
  return minorToDecimal(minor, minorDigits(currency || 'THB'));
}
