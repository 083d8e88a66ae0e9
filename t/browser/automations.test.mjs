// Automations against voucherd's admin API behind nginx: the form's own
// checks and the engine's reasons next to their fields; a weekly schedule
// and a trigger made and edited; the calendar of the next runs in the
// shop's zone; the preview with Thai text, baht and the member's name; a
// lost connection said plainly with nothing typed lost; Thai and English;
// a phone's width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from './lib/harness.mjs';
import { admin, jobEnd, dashboard, fill, text, adminEnv, textOnce } from './lib/admin.mjs';
import { formToDefinition, splitSchedule, joinSchedule } from '../../dashboard/js/automations.js';
import { ruleText, parseRules } from '../../dashboard/js/segments.js';
import { showCode } from '../../dashboard/js/kit.js';

const TOKEN = 'marketer-7f3a9c1e5d2b8046';
// the channel's URL is never called here: nothing is run
const env = adminEnv({ token: TOKEN, webhook: 'http://127.0.0.1:9/never' }, async (srv) => {
  await admin(srv, TOKEN, 'POST', 'campaigns', { id: 'weekend', name: 'ลดสุดสัปดาห์', kind: 'amount', value: 12050, currency: 'THB', tz_offset: '+07:00' });
  await admin(srv, TOKEN, 'POST', 'campaigns', { id: 'welcome', name: 'Welcome', kind: 'percent', value: 1000, currency: 'THB', tz_offset: '+07:00' });
  const j = await admin(srv, TOKEN, 'POST', 'jobs/members/import',
    'id,name,email,tier\nnok,นกน้อย <i>ใจดี</i>,nok@example.com,gold\npim,Pim,pim@example.com,gold\n', 'text/csv');
  assert.equal((await jobEnd(srv, TOKEN, j.id)).state, 'done');
});

test('a weekly automation: checks next to the fields, the calendar, the preview', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/automations/new?segment=tier%3Agold', { lang: 'th', width: 1280, height: 900 });
  await page.waitForSelector('#f-campaign option[value="weekend"]');
  assert.equal(await page.$eval('#f-segment', (i) => i.value), 'tier:gold', 'the segment from the builder');
  await page.click('#auto-save');
  assert.match(await text(page, '#err-campaign'), /จำเป็นต้องกรอก/);
  assert.match(await text(page, '#err-channel'), /จำเป็นต้องกรอก/);
  assert.match(await text(page, '#err-message'), /จำเป็นต้องกรอก/);
  await page.select('#f-campaign', 'weekend');
  await page.select('#f-kind', 'weekly');
  await page.type('#f-detail', 'sat,sum');
  await page.type('#f-channel', 'hook');
  await page.select('#f-locale', 'th-TH');
  await page.type('#f-message', 'คุณ {{name}} รับส่วนลด {{discount}} ด้วยโค้ด {{code}} {{nope}}');
  await page.click('#auto-save');
  // the engine's reasons, one at a time, each next to its field
  assert.match(await textOnce(page, '#err-kind'), /เซิร์ฟเวอร์แจ้งว่า: schedule "weekly sat,sum 09:00"/);
  await fill(page, '#f-detail', 'sat,sun');
  await page.click('#auto-save');
  assert.match(await textOnce(page, '#err-message'), /unknown field "nope"/);
  await shot(page, 'auto-refused-th');
  const msg = await page.$eval('#f-message', (i) => i.value);
  await fill(page, '#f-message', msg.replace(' {{nope}}', ''));
  await page.click('#auto-save');
  await page.waitForSelector('#auto-run');
  const def = (await admin(env.srv, TOKEN, 'GET', 'automations/weekend')).definition;
  assert.equal(def.schedule, 'weekly sat,sun 09:00');
  assert.equal(def.segment, 'tier:gold');
  assert.equal(def.channel, 'hook');
  assert.equal(def.locale, 'th-TH');

  // the preview: Thai text, baht, the member's name as text
  await page.click('#auto-preview');
  await page.waitForSelector('#preview-count');
  assert.equal(await page.$eval('#preview-count', (p) => p.dataset.recipients), '2');
  const nok = await page.$eval('#preview li[data-member="nok"] .message', (m) => m.textContent);
  assert.match(nok, /^คุณ นกน้อย <i>ใจดี<\/i> รับส่วนลด ฿120\.50 ด้วยโค้ด /);
  assert.equal(await page.$$eval('#preview i', (x) => x.length), 0);
  await shot(page, 'auto-preview-th');

  // the next runs: Saturdays and Sundays at 09:00 in Bangkok
  const next = await page.$$eval('#next-runs li', (x) => x.map((l) => l.textContent));
  assert.equal(next.length, 5);
  for (const n of next) assert.match(n, /09:00/);
  // the list and its calendar
  await page.goto(`${env.srv.base}/dashboard/#/automations`);
  await page.waitForSelector('#automations tr[data-campaign="weekend"]');
  await page.waitForSelector('.calendar li[data-at]');
  const ats = await page.$$eval('.calendar li[data-at]', (x) => x.map((l) => Number(l.dataset.at)));
  const api = (await admin(env.srv, TOKEN, 'GET', 'automations/weekend/next?count=10')).next_runs;
  assert.deepEqual(ats, api);
  for (const at of ats) {
    const d = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Bangkok', weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(at * 1000));
    assert.match(d, /^(Sat|Sun) 09:00$/);
  }
  await shot(page, 'auto-calendar-th');
  await page.click('#lang');
  await page.waitForSelector('.calendar li[data-at]');
  await shot(page, 'auto-calendar-en');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('a trigger: made, edited; a lost connection loses nothing', async (t) => {
  if (env.skipped(t)) return;
  const page = await dashboard(env.browser, env.srv, TOKEN, '#/automations/new', { lang: 'en', width: 1280, height: 900 });
  await page.waitForSelector('#f-campaign option[value="welcome"]');
  await page.select('#f-campaign', 'welcome');
  await page.click('#f-mode-trigger');
  assert.equal(await page.$eval('#when-schedule', (x) => x.hidden), true);
  await page.select('#f-event', 'signup');
  await page.type('#f-delay', '2x');
  await fill(page, '#f-segment', 'all');
  await page.type('#f-channel', 'hook');
  await page.click('#f-issue-shared');
  await page.type('#f-code', 'WELCOME10');
  await page.type('#f-message', 'Welcome {{name}}: {{code}} gives {{discount}} off');
  await page.click('#auto-save');
  await page.waitForFunction(() => document.querySelector('#err-delay').textContent !== ''
    || document.querySelector('#err-code').textContent !== '');
  // the code must exist, the delay must parse: whichever the engine says first
  const first = await page.$eval('#err-delay', (p) => p.textContent) || await page.$eval('#err-code', (p) => p.textContent);
  assert.match(first, /The server says: /);
  await admin(env.srv, TOKEN, 'POST', 'codes', { code: 'WELCOME10', campaign: 'welcome' });
  await fill(page, '#f-delay', '2h');
  // offline: said plainly, nothing lost, across a reload
  await page.setOfflineMode(true);
  await page.click('#auto-save');
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await text(page, '#banner'), /No connection to the server. Nothing you typed is lost/);
  await shot(page, 'auto-offline-en');
  await page.setOfflineMode(false);
  await page.reload();
  await page.waitForSelector('#f-campaign option[value="welcome"]');
  assert.equal(await page.$eval('#f-delay', (i) => i.value), '2h');
  assert.equal(await page.$eval('#f-code', (i) => i.value), 'WELCOME10');
  assert.equal(await page.$eval('#f-mode-trigger', (i) => i.checked), true);
  await page.click('#auto-save');
  await page.waitForSelector('#auto-run');
  const def = (await admin(env.srv, TOKEN, 'GET', 'automations/welcome')).definition;
  assert.deepEqual(def.trigger, { event: 'signup', delay: '2h' });
  assert.equal(def.issue, 'shared');
  assert.equal(def.code, 'WELCOME10');
  // an edit: paused
  await page.select('#f-status', 'paused');
  await page.click('#auto-save');
  for (let i = 0; i < 50 && (await admin(env.srv, TOKEN, 'GET', 'automations/welcome')).definition.status !== 'paused'; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await admin(env.srv, TOKEN, 'GET', 'automations/welcome')).definition.status, 'paused');
  assert.deepEqual(page.problems.filter((p) => !/ERR_INTERNET_DISCONNECTED/.test(p)), []);
  await page.close();

  const phone = await dashboard(env.browser, env.srv, TOKEN, '#/automations/weekend', { lang: 'th' });
  await phone.waitForSelector('#next-runs li');
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth), 390, 'no sideways scrolling on a phone');
  await shot(phone, 'auto-phone-th');
  await phone.close();
});

test('in Node: the form and the definition, the rules as text, codes in their pattern', () => {
  const form = {
    mode: 'trigger', kind: 'daily', detail: '', time: '09:00', catch_up: true, event: 'purchase', delay: ' 2h ',
    unless: true, enters: '', segment: 'tier:gold', per_member: 'once a month', status: 'active', issue: 'unique',
    code: '', pattern: 'VIP-####-####-####', valid_days: '7', max_uses: '', channel: 'line', locale: 'th-TH',
    message: 'สวัสดี {{name}}', subject: '',
  };
  // what the form does not show is kept from the definition it edits
  const base = { schedule: 'daily 10:00', segment: 'all', channel: 'sms', message: 'x', future_field: 1,
    codes: { prefix: 'OLD', length: 8, mac_length: 4, charset: 'ABCDEFGH', max_uses: 3 } };
  assert.deepEqual(formToDefinition(form, base), {
    trigger: { event: 'purchase', delay: '2h', unless: 'purchase' }, segment: 'tier:gold', per_member: 'once a month',
    future_field: 1, codes: { prefix: 'VIP', pattern: 'VIP-####-####-####', length: 8, mac_length: 4, charset: 'ABCDEFGH', valid_days: 7 },
    channel: 'line', locale: 'th-TH', message: 'สวัสดี {{name}}',
  });
  // a birthday schedule without catch-up; one shared code drops the codes
  const b = formToDefinition({ ...form, mode: 'schedule', kind: 'birthdays day', catch_up: false, issue: 'shared', code: 'HBD100' }, base);
  assert.equal(b.schedule, 'birthdays day 09:00');
  assert.equal(b.catch_up, false);
  assert.equal(b.trigger, undefined);
  assert.equal(b.codes, undefined);
  assert.equal(b.code, 'HBD100');
  assert.deepEqual(splitSchedule('weekly sat,sun 09:00'), { kind: 'weekly', detail: 'sat,sun', time: '09:00' });
  assert.deepEqual(splitSchedule('birthdays day 08:30'), { kind: 'birthdays day', detail: '', time: '08:30' });
  assert.equal(joinSchedule('daily', 'ignored', '07:00'), 'daily 07:00');
  assert.equal(joinSchedule('once', '2027-03-15', '09:00'), 'once 2027-03-15 09:00');

  assert.equal(ruleText([{ kind: 'tier', value: ' gold , silver ' }, { kind: 'birth_month', value: '' }, { kind: 'dormant', value: '60' }]),
    'tier:gold,silver & birth_month & dormant:60');
  assert.deepEqual(parseRules('tier:gold & birth_month:7 & all'), [{ kind: 'tier', value: 'gold' }, { kind: 'birth_month', value: '7' }, { kind: 'all', value: '' }]);
  assert.equal(parseRules('nonsense:1'), null);

  assert.equal(showCode('SALE7Q2M94KD', 'SALE-####-####'), 'SALE-7Q2M-94KD');
  assert.equal(showCode('HBDGQCNAP928Y4P', 'HBD-####-####-####'), 'HBD-GQCN-AP92-8Y4P');
  assert.equal(showCode('7Q2M94KDTH', '####-####-TH'), '7Q2M-94KD-TH');
  assert.equal(showCode('SALE7Q2M', 'SALE-####-####'), 'SALE7Q2M', 'too short: as stored');
  assert.equal(showCode('GIFT7Q2M94KD', 'SALE-####-####'), 'GIFT7Q2M94KD', 'another prefix: as stored');
  assert.equal(showCode('X1', undefined), 'X1');
});
