// dashboard/config.json: where the APIs are and how the shop reads money
// and time.  Read once, from the same origin.
const DEFAULTS = {
  edge_api: '/vouchers/',
  admin_api: '/v1/',
  currency: 'THB',
  time_zone: 'Asia/Bangkok',
  language: 'th',
  qr_source: 'local',
};

let cached;

export async function loadConfig(base) {
  if (cached) return cached;
  let c = {};
  try {
    const r = await fetch(new URL('config.json', base), { cache: 'no-store' });
    if (r.ok) c = await r.json();
  } catch { /* the defaults */ }
  cached = { ...DEFAULTS, ...c };
  return cached;
}
