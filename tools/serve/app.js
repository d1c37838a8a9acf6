// app.js - vae serve's page: draws the test codes as a map, asks the server's JSON API
// (docs/serve.md) to decode whatever point is pointed at, and keeps one "current" code that
// the hover, the sliders, samples, uploads and picks all move. Plain JavaScript, no library.
'use strict';

const $ = (id) => document.getElementById(id);
// matplotlib's tab10, then greys: distinct on white, and what `vae embed` draws
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf'];
const colour = (k) => (k < 0 ? '#888' : COLOURS[k % COLOURS.length]);

let info = null;   // GET /api/info
let codes = null;  // GET /api/codes: index, labels, z
let xy = [];       // the codes projected on the map's axes
let view = { cx: 0, cy: 0, s: 1 }; // map units at the canvas centre, pixels per unit
let current = null; // the code the sliders hold and the decoded image shows
let picks = [];     // up to two codes to interpolate between
let hover = null;   // the pointed-at map position, in map units

function status(msg) { $('status').textContent = msg || ''; }

async function api(path, opts) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

function label() { return info.classes ? Number($('class').value) : undefined; }

// ------------------------------------------------------------ projection

function axes() {
  const v = $('axes').value;
  if (v === 'dims') return { kind: 'dims', i: Number($('dimx').value), j: Number($('dimy').value) };
  return { kind: v };
}

function project(z) {
  const a = axes();
  if (a.kind === 'latent') return [z[0], z[1]];
  if (a.kind === 'dims') return [z[a.i], z[a.j]];
  const p = info.projection;
  let u = 0, v = 0;
  for (let k = 0; k < info.latent; k++) {
    const c = z[k] - p.mean[k];
    u += c * p.axes[0][k];
    v += c * p.axes[1][k];
  }
  return [u, v];
}

// the code at map position (u, v): on the principal plane, or the current
// code with the two shown dimensions replaced
function unproject(u, v) {
  const a = axes();
  if (a.kind === 'latent') return [u, v];
  if (a.kind === 'dims') {
    const z = current ? current.slice() : new Array(info.latent).fill(0);
    z[a.i] = u; z[a.j] = v;
    return z;
  }
  const p = info.projection;
  return p.mean.map((m, k) => m + u * p.axes[0][k] + v * p.axes[1][k]);
}

// ------------------------------------------------------------------ map

const canvas = $('map');
const ctx = canvas.getContext('2d');
const toPx = (u, v) => [canvas.width / 2 + (u - view.cx) * view.s, canvas.height / 2 - (v - view.cy) * view.s];
const toMap = (x, y) => [view.cx + (x - canvas.width / 2) / view.s, view.cy - (y - canvas.height / 2) / view.s];

function fit() {
  if (!xy.length) return;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [u, v] of xy) {
    x0 = Math.min(x0, u); x1 = Math.max(x1, u); y0 = Math.min(y0, v); y1 = Math.max(y1, v);
  }
  view.cx = (x0 + x1) / 2; view.cy = (y0 + y1) / 2;
  view.s = 0.9 * Math.min(canvas.width / Math.max(x1 - x0, 1e-6), canvas.height / Math.max(y1 - y0, 1e-6));
  draw();
}

function reproject() {
  xy = codes.z.map(project);
  fit();
}

function ring(z, col, r) {
  const [x, y] = toPx(...project(z));
  ctx.strokeStyle = col; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.stroke();
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // the axes through the origin
  ctx.strokeStyle = '#e4e4e4'; ctx.lineWidth = 1;
  const [ox, oy] = toPx(0, 0);
  ctx.beginPath(); ctx.moveTo(ox, 0); ctx.lineTo(ox, canvas.height);
  ctx.moveTo(0, oy); ctx.lineTo(canvas.width, oy); ctx.stroke();
  ctx.globalAlpha = 0.7;
  for (let i = 0; i < xy.length; i++) {
    const [x, y] = toPx(xy[i][0], xy[i][1]);
    if (x < -3 || y < -3 || x > canvas.width + 3 || y > canvas.height + 3) continue;
    ctx.fillStyle = colour(codes.labels ? codes.labels[i] : -1);
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  ctx.globalAlpha = 1;
  if (picks.length === 2) { // the path between the picks (its straight projection)
    const [ax, ay] = toPx(...project(picks[0])), [bx, by] = toPx(...project(picks[1]));
    ctx.strokeStyle = '#000'; ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke(); ctx.setLineDash([]);
  }
  picks.forEach((z) => ring(z, '#000', 7));
  if (current) {
    const [x, y] = toPx(...project(current));
    ctx.strokeStyle = '#d00'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x - 8, y); ctx.lineTo(x + 8, y); ctx.moveTo(x, y - 8); ctx.lineTo(x, y + 8); ctx.stroke();
  }
}

// ------------------------------------------------------------ decoding

// one decode in flight at a time; the latest wish waits and wins
let inflight = false, wanted = null;
function decode(z, what) {
  wanted = { z, what };
  if (!inflight) pump();
}
async function pump() {
  if (!wanted) return;
  const { z, what } = wanted;
  wanted = null;
  inflight = true;
  try {
    const body = { z: Array.from(z, (x) => Math.max(-1e4, Math.min(1e4, x))), scale: 1 };
    if (info.classes) body.label = label();
    const r = await api('/api/decode', { method: 'POST', body: JSON.stringify(body) });
    show($('decoded'), await r.blob());
    $('what').textContent = what;
    status('');
  } catch (e) { status(e.message); }
  inflight = false;
  pump();
}

function show(img, blob) {
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  if (old.startsWith('blob:')) URL.revokeObjectURL(old);
  img.hidden = false;
}

// the current code: sliders follow it, the image shows it, the map marks it
function setCurrent(z, what) {
  current = Array.from(z);
  syncSliders();
  decode(current, what);
  draw();
}

// ------------------------------------------------------------ sliders

function buildSliders() {
  const box = $('sliders');
  box.textContent = '';
  for (const j of info.order) {
    const name = document.createElement('span');
    name.textContent = 'z' + j + ' (KL ' + info.kl[j].toFixed(2) + ')';
    const s = document.createElement('input');
    s.type = 'range'; s.min = info.range[j][0]; s.max = info.range[j][1]; s.step = 'any';
    s.value = 0; s.dataset.dim = j; s.id = 'z' + j;
    const val = document.createElement('span');
    val.id = 'v' + j; val.textContent = '0';
    s.addEventListener('input', () => {
      if (!current) current = new Array(info.latent).fill(0);
      current[j] = Number(s.value);
      val.textContent = current[j].toFixed(2);
      decode(current, 'traversal of z' + j);
      draw();
    });
    box.append(name, s, val);
  }
}

function syncSliders() {
  for (let j = 0; j < info.latent; j++) {
    $('z' + j).value = current[j];
    $('v' + j).textContent = current[j].toFixed(2);
  }
}

// ------------------------------------------------------ picks and strip

async function pick(z, what) {
  picks.push(Array.from(z));
  if (picks.length > 2) picks.shift();
  setCurrent(z, what);
  if (picks.length === 2) await interpolate();
}

async function interpolate() {
  if (picks.length !== 2) return;
  const body = {
    a: picks[0], b: picks[1], steps: Number($('steps').value) || 10,
    slerp: Number(document.querySelector('input[name=path]:checked').value), scale: 2,
  };
  if (info.classes) body.label = label();
  try {
    const r = await api('/api/interpolate', { method: 'POST', body: JSON.stringify(body) });
    show($('strip'), await r.blob());
  } catch (e) { status(e.message); }
  draw();
}

// the test point nearest to pixel (x, y), within 6 pixels
function nearest(x, y) {
  let best = -1, bd = 36;
  for (let i = 0; i < xy.length; i++) {
    const [px, py] = toPx(xy[i][0], xy[i][1]);
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}

// ------------------------------------------------------------- events

let drag = null;
canvas.addEventListener('mousedown', (e) => { drag = { x: e.offsetX, y: e.offsetY, moved: false }; });
window.addEventListener('mouseup', async (e) => {
  if (!drag) return;
  const d = drag;
  drag = null;
  canvas.classList.remove('panning');
  if (d.moved || e.target !== canvas) return;
  const i = nearest(e.offsetX, e.offsetY);
  if (i >= 0) {
    const k = codes.index[i];
    try {
      const r = await api('/api/image?i=' + k);
      show($('original'), await r.blob());
      $('origwhat').textContent = 'test image ' + k + (codes.labels ? ', class ' + className(codes.labels[i]) : '');
    } catch (err) { status(err.message); }
    pick(codes.z[i], 'test image ' + k + ' (its code)');
  } else {
    pick(unproject(...toMap(e.offsetX, e.offsetY)), 'the picked point');
  }
});
canvas.addEventListener('mousemove', (e) => {
  if (drag) {
    const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
    if (drag.moved || dx * dx + dy * dy > 9) {
      drag.moved = true;
      canvas.classList.add('panning');
      view.cx -= dx / view.s; view.cy += dy / view.s;
      drag.x = e.offsetX; drag.y = e.offsetY;
      draw();
      return;
    }
  }
  hover = toMap(e.offsetX, e.offsetY);
  const z = unproject(...hover);
  decode(z, 'map (' + hover[0].toFixed(2) + ', ' + hover[1].toFixed(2) + ')');
});
canvas.addEventListener('wheel', (e) => {
  e.preventDefault();
  const [u, v] = toMap(e.offsetX, e.offsetY);
  view.s *= Math.exp(-e.deltaY * 0.0015);
  // keep the point under the cursor where it is
  view.cx = u - (e.offsetX - canvas.width / 2) / view.s;
  view.cy = v + (e.offsetY - canvas.height / 2) / view.s;
  draw();
}, { passive: false });

$('fit').addEventListener('click', fit);
$('axes').addEventListener('change', () => {
  const dims = $('axes').value === 'dims';
  $('dimx').hidden = $('dimy').hidden = !dims;
  reproject();
});
$('dimx').addEventListener('change', reproject);
$('dimy').addEventListener('change', reproject);
$('clear').addEventListener('click', () => { picks = []; $('strip').hidden = true; draw(); });
$('steps').addEventListener('change', interpolate);
document.querySelectorAll('input[name=path]').forEach((r) => r.addEventListener('change', interpolate));
$('class').addEventListener('change', () => { if (current) decode(current, 'class ' + className(label())); interpolate(); });

$('sample').addEventListener('click', async () => {
  try {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const s = await (await api('/api/sample?n=1&seed=' + seed)).json();
    setCurrent(s.z[0], 'a sample from the prior (seed ' + seed + ')');
  } catch (e) { status(e.message); }
});

$('upload').addEventListener('change', async () => {
  const f = $('upload').files[0];
  if (!f) return;
  try {
    const q = info.classes ? '?label=' + label() : '';
    const r = await (await api('/api/encode' + q, { method: 'POST', body: f })).json();
    show($('original'), f);
    $('origwhat').textContent = f.name;
    pick(r.z, 'the upload, encoded and decoded');
  } catch (e) { status(f.name + ': ' + e.message); }
  $('upload').value = '';
});

// ---------------------------------------------------------------- start

function className(k) {
  const names = info.class_names ? info.class_names.split('/') : [];
  return names[k] || String(k);
}

function option(sel, value, text) {
  const o = document.createElement('option');
  o.value = value; o.textContent = text;
  sel.append(o);
}

async function start() {
  try {
    info = await (await api('/api/info')).json();
    codes = await (await api('/api/codes?n=' + Math.min(info.points, 5000))).json();
  } catch (e) { status('cannot load the model: ' + e.message); return; }
  $('title').textContent = info.model + ', latent ' + info.latent + ', ' + codes.n + ' test codes';
  $('info').textContent = info.info;
  const ax = $('axes');
  if (info.projection.kind === 'latent') option(ax, 'latent', 'z0, z1 (the latent)');
  else option(ax, 'pca', 'principal plane (' + info.projection.explained.map((e) => (100 * e).toFixed(0) + '%').join(' + ') + ')');
  if (info.latent > 2) option(ax, 'dims', 'two dimensions');
  for (let j = 0; j < info.latent; j++) { option($('dimx'), j, 'x: z' + j); option($('dimy'), j, 'y: z' + j); }
  $('dimx').value = info.order[0]; $('dimy').value = info.order[1 % info.latent];
  if (info.classes) {
    $('classbox').hidden = false;
    for (let k = 0; k < info.classes; k++) option($('class'), k, className(k));
  }
  if (codes.labels) {
    const seen = [...new Set(codes.labels)].sort((a, b) => a - b);
    for (const k of seen) {
      const s = document.createElement('span');
      s.style.setProperty('--c', colour(k));
      s.textContent = className(k);
      $('legend').append(s);
    }
  }
  buildSliders();
  reproject();
  setCurrent(codes.z[0], 'test image ' + codes.index[0] + ' (its code)');
}

start();
