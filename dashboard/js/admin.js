// The admin API (voucherd, behind nginx; docs/admin-api.md): a bearer
// token kept in this tab's sessionStorage, never in a URL; errors as
// { status, reason, message, field }, the edge API's shape.
const TOKEN = 'voucher.admin_token';

export class AdminError extends Error {
  constructor(o) {
    super(o.message || o.reason || o.kind);
    this.status = o.status;       // HTTP status, 0 when nothing came back
    this.reason = o.reason;       // the API's stable reason, if it answered
    this.field = o.field;         // the field at fault, if one is
    this.kind = o.kind;           // 'refused', 'offline', 'unavailable'
    this.apiMessage = o.message;
  }
}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN, t);
    else sessionStorage.removeItem(TOKEN);
  } catch { /* private mode: the token lives as long as the page */ }
}

export function createClient(base, onUnauthorized) {
  const root = base.endsWith('/') ? base : base + '/';

  async function call(method, path, body, query) {
    let url = root + path.replace(/^\//, '');
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      if ([...q].length) url += '?' + q;
    }
    const headers = { Accept: 'application/json' };
    const tok = getToken();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(url, {
        method, headers, cache: 'no-store', credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new AdminError({ kind: 'offline', status: 0 });
    }
    let j = null;
    try { j = await r.json(); } catch { j = null; }
    if (r.ok && j && typeof j === 'object') return j;
    if (j && typeof j === 'object' && typeof j.reason === 'string') {
      const e = new AdminError({ kind: r.status >= 500 ? 'unavailable' : 'refused', status: r.status, ...j });
      if (r.status === 401 && onUnauthorized) onUnauthorized(e);
      throw e;
    }
    // nginx's own page: voucherd down (502), or no such location (404)
    throw new AdminError({ kind: 'unavailable', status: r.status });
  }

  return {
    get: (p, q) => call('GET', p, undefined, q),
    post: (p, b) => call('POST', p, b === undefined ? {} : b),
    patch: (p, b) => call('PATCH', p, b),
    put: (p, b) => call('PUT', p, b),
    del: (p) => call('DELETE', p),
    // every page of a list, up to max items
    async all(p, q, max = 1000) {
      const items = [];
      let cursor;
      do {
        const page = await call('GET', p, undefined, { ...q, cursor });
        items.push(...(page.items || []));
        cursor = page.next_cursor;
      } while (cursor && items.length < max);
      return items;
    },
  };
}

export const enc = encodeURIComponent;
