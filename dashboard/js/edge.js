// The edge API through nginx (docs/api.md): validate and redeem.
import { t } from './i18n.js';
import { formatMoney } from './money.js';

export class NetError extends Error {
  constructor(kind, status) {
    super(kind);
    this.kind = kind;        // 'offline' or 'bad_answer'
    this.status = status;
  }
}

export async function edgePost(base, op, body, opts = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (opts.key) headers['Idempotency-Key'] = opts.key;
  let r;
  try {
    r = await fetch(base + op, {
      method: 'POST', headers, body: JSON.stringify(body),
      cache: 'no-store', credentials: 'same-origin', signal: opts.signal,
    });
  } catch {
    throw new NetError('offline');
  }
  let j = null;
  try { j = await r.json(); } catch { j = null; }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new NetError('bad_answer', r.status);
  return { status: r.status, body: j, replayed: r.headers.get('Idempotent-Replayed') === 'true' };
}

// the engine's refusal as a sentence in the page's language
export function reasonText(body, currency, locale) {
  const reason = body.reason || 'other';
  const vars = { message: body.message || reason };
  if (body.min_amount !== undefined) vars.min_amount = formatMoney(body.min_amount, currency, locale);
  if (body.retry_after_ms !== undefined) vars.seconds = Math.max(1, Math.ceil(body.retry_after_ms / 1000));
  if (body.field !== undefined) vars.field = String(body.field);
  const key = 'reason.' + reason;
  const s = t(key, vars);
  return s === key ? t('reason.other', vars) : s;
}

// a random idempotency key, 32 hex characters
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
