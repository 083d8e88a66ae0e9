// Reading QR codes in the browser: the pictures voucherctl draws (SVG and
// PNG, worker/vw_qr.c) decode to their text with the page's decoder, and
// the in-store page scans a code from a camera (Chromium's fake camera
// playing a QR code) and redeems it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import qrcode from '../../dashboard/vendor/qrcode-generator/qrcode.mjs';
import { startServers, launch, newPage, shot, pairs, trail, root } from './lib/harness.mjs';

const ctl = path.join(root, 'build/worker/voucherctl');
const dir = mkdtempSync(path.join(tmpdir(), 'vb-scan-'));
let srv;

// a Y4M video (one 640x480 frame, repeated by Chromium) of a QR code
function y4m(text, file) {
  const q = qrcode(0, 'M');
  q.addData(text);
  q.make();
  const n = q.getModuleCount();
  const W = 640;
  const H = 480;
  const scale = Math.floor(360 / (n + 8));
  const x0 = Math.floor((W - n * scale) / 2);
  const y0 = Math.floor((H - n * scale) / 2);
  const Y = Buffer.alloc(W * H, 235);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (!q.isDark(r, c)) continue;
      for (let dy = 0; dy < scale; dy++) {
        Y.fill(16, (y0 + r * scale + dy) * W + x0 + c * scale, (y0 + r * scale + dy) * W + x0 + (c + 1) * scale);
      }
    }
  }
  const UV = Buffer.alloc((W / 2) * (H / 2), 128);
  writeFileSync(file, Buffer.concat([
    Buffer.from(`YUV4MPEG2 W${W} H${H} F10:1 Ip A1:1 C420jpeg\n`),
    Buffer.from('FRAME\n'), Y, UV, UV,
  ]));
}

before(async () => {
  srv = await startServers();
  await srv.redis('FCALL', 'voucher_campaign_set', 1, '{v}:k:cam', 'kind', 'amount', 'value', 3000, 'currency', 'THB');
  await srv.redis('FCALL', 'voucher_code_set', 1, '{v}:c:CAM7Q2M', 'campaign', 'cam', 'max_uses', 1);
});

after(async () => {
  if (srv) await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('voucherctl\'s SVG and PNG decode to their text', async () => {
  assert.ok(existsSync(ctl), 'build/worker/voucherctl (make -C worker) draws the QR');
  const browser = await launch();
  try {
    const page = await newPage(browser);
    await page.goto(`${srv.base}/dashboard/store/`);
    await page.waitForSelector('body[data-ready="1"]');
    const texts = ['WELCOME-10', 'GIFT-7Q2M-94KD', 'lower-case-kept', 'https://shop.example/r?code=SPRING-2026',
      'ของขวัญ-๑๒๓', 'X'.repeat(300)];
    for (const text of texts) {
      for (const format of ['svg', 'png']) {
        const out = execFileSync(ctl, ['qr', text, '--format', format, '--scale', '4']);
        const got = await page.evaluate(async (b64, type) => {
          const { decode } = await import('/dashboard/js/scan.js');
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const img = new Image();
          img.src = URL.createObjectURL(new Blob([bytes], { type }));
          await img.decode();
          const w = img.naturalWidth || 400;
          return decode(img, w, img.naturalHeight || w);
        }, out.toString('base64'), format === 'svg' ? 'image/svg+xml' : 'image/png');
        assert.equal(got, text, `${format} of ${text.slice(0, 20)}`);
      }
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await browser.close();
  }
});

test('the camera scans a QR code and the code is redeemed', async () => {
  const video = path.join(dir, 'qr.y4m');
  y4m('CAM-7Q2M', video);
  const browser = await launch(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${video}`]);
  try {
    const page = await newPage(browser, { lang: 'en' });
    await page.goto(`${srv.base}/dashboard/store/`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.type('#amount', '450');
    await page.click('#scan');
    await page.waitForFunction(() => document.querySelector('#code').value === 'CAM-7Q2M', { timeout: 20000 });
    assert.equal(await page.$eval('#camera', (c) => c.hidden), true, 'the camera stops after a scan');
    await page.waitForSelector('#result[data-state="valid"]');
    await shot(page, 'store-camera-en');
    await page.click('#redeem');
    await page.waitForSelector('#result[data-state="redeemed"]');
    const e = (await trail(srv)).filter((x) => x.code === 'CAM7Q2M');
    assert.equal(e.length, 1);
    assert.equal(e[0].amount, '45000');
    assert.equal(e[0].discount, '3000');
    const c = pairs(await srv.redis('FCALL', 'voucher_code_get', 1, '{v}:c:CAM7Q2M'));
    assert.equal(Number(c.used), 1);
    assert.deepEqual(page.problems, []);
  } finally {
    await browser.close();
  }
});
