// serve_load.js - a load test of vae serve's decode on loopback: C clients (keep-alive
// connections) send N requests in all, POST /api/decode of a random code each; prints the
// throughput and the latency's p50/p99/max. Node's own http, nothing to install.
//   node tests/serve_load.js URL LATENT [N=20000] [C=16]
'use strict';
const http = require('http');

const [url, latent, N = 20000, C = 16] = process.argv.slice(2).map((v, i) => (i ? Number(v) : v));
const u = new URL('api/decode', url);
const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const lat = [];
let sent = 0, failed = 0;

function one() {
  return new Promise((resolve) => {
    const z = Array.from({ length: latent }, () => (Math.random() * 2 - 1) * 2);
    const body = JSON.stringify({ z });
    const t0 = process.hrtime.bigint();
    const req = http.request(u, { method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.statusCode !== 200) failed++;
        resolve();
      });
    });
    req.on('error', () => { failed++; resolve(); });
    req.end(body);
  });
}

async function client() { while (sent < N) { sent++; await one(); } }

(async () => {
  const t0 = Date.now();
  await Promise.all(Array.from({ length: C }, client));
  const s = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
  console.log(`${N} decodes, ${C} clients: ${(N / s).toFixed(0)} req/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms, ${failed} failed`);
  agent.destroy();
  process.exit(failed ? 1 : 0);
})();
