// Reading a QR code: Chromium's BarcodeDetector where the platform has
// one, else the vendored jsQR (dashboard/vendor/jsqr, loaded by the page
// as a classic script).  The same decoder reads camera frames and photos.

let detector;
let detectorChecked = false;

async function barcodeDetector() {
  if (detectorChecked) return detector;
  detectorChecked = true;
  try {
    if ('BarcodeDetector' in window) {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes('qr_code')) detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    }
  } catch { detector = undefined; }
  return detector;
}

// which decoder this browser uses: 'barcode-detector' or 'jsqr'
export async function decoderName() {
  return (await barcodeDetector()) ? 'barcode-detector' : 'jsqr';
}

const canvas = document.createElement('canvas');
const ctx = canvas.getContext('2d', { willReadFrequently: true });

// a video frame, an image or a bitmap -> the text of a QR code, or null
export async function decode(source, width, height) {
  const d = await barcodeDetector();
  if (d) {
    try {
      const found = await d.detect(source);
      if (found.length) return found[0].rawValue;
    } catch { /* fall through to jsQR */ }
  }
  if (typeof window.jsQR !== 'function') return null;
  // large photos are scaled down: jsQR is quick on about a megapixel
  const scale = Math.min(1, 1200 / Math.max(width, height));
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const r = window.jsQR(img.data, img.width, img.height, { inversionAttempts: 'attemptBoth' });
  return r ? r.data : null;
}

export async function decodeFile(file) {
  const bmp = await createImageBitmap(file);
  try {
    return await decode(bmp, bmp.width, bmp.height);
  } finally {
    bmp.close();
  }
}

// the code in a scanned text: the text itself, or the "code" parameter
// of a link (https://shop.example/r?code=GIFT-7Q2M-94KD)
export function codeFromText(text) {
  const s = String(text || '').trim();
  if (/^https?:\/\//i.test(s)) {
    try {
      const u = new URL(s);
      const c = u.searchParams.get('code');
      if (c) return c.trim();
    } catch { /* not a link */ }
  }
  return s;
}

// the camera: calls found(text) once and stops; returns stop()
export async function startCamera(video, found) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: 'environment' } }, audio: false,
  });
  let running = true;
  video.srcObject = stream;
  video.setAttribute('playsinline', '');
  video.muted = true;
  await video.play();

  const stop = () => {
    running = false;
    for (const tr of stream.getTracks()) tr.stop();
    video.srcObject = null;
  };

  const tick = async () => {
    if (!running) return;
    if (video.readyState >= 2 && video.videoWidth) {
      const text = await decode(video, video.videoWidth, video.videoHeight);
      if (text && running) {
        stop();
        found(text);
        return;
      }
    }
    setTimeout(tick, 120);
  };
  tick();
  return stop;
}
