// serve_browser.js - vae serve's page in a real browser: Debian's chromium, headless, driven by
// puppeteer-core (no browser download). Loads the page, checks the map is drawn in colour,
// hovers two places and checks the decoded image changes, clicks two points and checks the
// interpolation strip appears, moves a slider, samples, uploads a PNG; a screenshot after each.
// Run through tests/serve_browser.sh (docs/serve.md), not directly:
//   node tests/serve_browser.js URL OUTDIR PNG_TO_UPLOAD
'use strict';
const puppeteer = require('puppeteer-core');

const [url, outdir, upload] = process.argv.slice(2);
let failed = 0;
const check = (ok, what) => { console.log((ok ? 'ok   ' : 'FAIL ') + what); if (!ok) failed++; };

// a digest of an <img>'s pixels (drawn onto a canvas): changes when the picture does
const pixels = (page, id) => page.evaluate((id) => {
  const img = document.getElementById(id);
  if (!img.complete || !img.naturalWidth) return '';
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i]) >>> 0;
  return c.width + 'x' + c.height + ':' + h;
}, id);

async function changes(page, id, before, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const now = await pixels(page, id);
    if (now && now !== before) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url, { waitUntil: 'networkidle0' });
  await page.waitForFunction(() => document.getElementById('info').textContent.length > 0);
  await page.waitForFunction(() => document.getElementById('decoded').naturalWidth > 0);

  // the map: points in several colours
  const colours = await page.evaluate(() => {
    const c = document.getElementById('map');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    let painted = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      painted++;
      seen.add((d[i] >> 4) + ',' + (d[i + 1] >> 4) + ',' + (d[i + 2] >> 4));
    }
    return { painted, colours: seen.size };
  });
  check(colours.painted > 2000 && colours.colours >= 8, `map drawn: ${colours.painted} pixels, ${colours.colours} colours`);
  check(/architecture/.test(await page.$eval('#info', (e) => e.textContent)), 'the model facts in the side panel');
  await page.screenshot({ path: outdir + '/1-loaded.png' });

  // hover: the decoded image follows the pointer
  const box = await (await page.$('#map')).boundingBox();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  const a = await changes(page, 'decoded', await pixels(page, 'decoded'));
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.65);
  const b = await changes(page, 'decoded', a);
  check(a && b && a !== b, 'hovering two places decodes two different images');
  await page.screenshot({ path: outdir + '/2-hover.png' });

  // click two points (the second on a test image's dot if one is near): the strip appears
  await page.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.35);
  await page.mouse.click(box.x + box.width * 0.68, box.y + box.height * 0.62);
  await page.waitForFunction(() => { const s = document.getElementById('strip'); return !s.hidden && s.naturalWidth > 0; }, { timeout: 5000 })
    .then(() => check(true, 'two clicks give an interpolation strip'), () => check(false, 'two clicks give an interpolation strip'));
  const strip = await page.$eval('#strip', (s) => [s.naturalWidth, s.naturalHeight]);
  check(strip[0] > strip[1] * 4, `the strip is a row of images (${strip[0]}x${strip[1]})`);
  // spherical instead of linear: another strip
  const lin = await pixels(page, 'strip');
  await page.click('input[name=path][value="1"]');
  check(await changes(page, 'strip', lin) !== null, 'spherical interpolation redraws the strip');
  await page.screenshot({ path: outdir + '/3-interpolate.png' });

  // a slider: the first (the largest KL) moved near its right end
  const before = await pixels(page, 'decoded');
  const slider = await page.$('#sliders input');
  const sb = await slider.boundingBox();
  await page.mouse.click(sb.x + sb.width * 0.9, sb.y + sb.height / 2);
  const moved = await changes(page, 'decoded', before);
  const val = await page.$eval('#sliders input', (s) => Number(s.value));
  check(moved !== null, `moving the first slider (to ${val.toFixed(2)}) redraws the image`);
  await page.screenshot({ path: outdir + '/4-slider.png' });

  // sample, then upload a PNG
  const s0 = await pixels(page, 'decoded');
  await page.click('#sample');
  check(await changes(page, 'decoded', s0) !== null, 'the sample button decodes a sample');
  const u0 = await pixels(page, 'decoded');
  await (await page.$('#upload')).uploadFile(upload);
  check(await changes(page, 'decoded', u0) !== null, 'an uploaded PNG is encoded and decoded');
  check((await page.$eval('#origwhat', (e) => e.textContent)).endsWith('.png'), 'the upload is shown beside its decoding');
  await page.screenshot({ path: outdir + '/5-upload.png' });

  check(errors.length === 0, 'no script errors' + (errors.length ? ': ' + errors.join('; ') : ''));
  await browser.close();
  console.log(failed ? failed + ' failed' : 'all passed');
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
