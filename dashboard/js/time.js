// Times in the shop's zone, in the reader's language.
export function formatTime(unixSeconds, timeZone, locale) {
  if (unixSeconds === undefined || unixSeconds === null) return '';
  return new Intl.DateTimeFormat(locale || 'en-GB', {
    timeZone: timeZone || undefined, dateStyle: 'medium', timeStyle: 'short',
  }).format(new Date(Number(unixSeconds) * 1000));
}

export function formatDate(unixSeconds, timeZone, locale) {
  if (unixSeconds === undefined || unixSeconds === null) return '';
  return new Intl.DateTimeFormat(locale || 'en-GB', {
    timeZone: timeZone || undefined, dateStyle: 'long',
  }).format(new Date(Number(unixSeconds) * 1000));
}

// minutes east of UTC of a zone at an instant ("Asia/Bangkok" -> 420)
export function zoneOffset(timeZone, unixSeconds) {
  const d = new Date((unixSeconds ?? Date.now() / 1000) * 1000);
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(d);
  const g = (t) => Number(parts.find((p) => p.type === t).value);
  const asUtc = Date.UTC(g('year'), g('month') - 1, g('day'), g('hour'), g('minute'), g('second'));
  return Math.round((asUtc - Math.floor(d.getTime() / 1000) * 1000) / 60000);
}

// "2026-12-31T23:59" (or with ":SS") typed in a zone of offset minutes
// -> unix seconds
export function localToUnix(value, offsetMinutes) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || '');
  if (!m) return null;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  if (new Date(ms).getUTCMonth() !== +m[2] - 1) return null;
  return Math.floor(ms / 1000) - offsetMinutes * 60;
}

// unix seconds -> "2026-12-31T23:59" in a zone of offset minutes, with
// ":SS" when the seconds are not 0 (an edit keeps the time exact)
export function unixToLocal(unixSeconds, offsetMinutes) {
  if (unixSeconds === undefined || unixSeconds === null) return '';
  const d = new Date((Number(unixSeconds) + offsetMinutes * 60) * 1000);
  const s = d.toISOString();
  return s.slice(17, 19) === '00' ? s.slice(0, 16) : s.slice(0, 19);
}
