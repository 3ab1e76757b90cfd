// The GraphQL-over-HTTP audit (graphql-http's auditServer) against a real Orchard: this script
// starts the orchard binary ($AUDIT_ORCHARD) on a free loopback port with a fresh SQLite database
// in a temporary folder, takes the ADMIN key it prints, runs every audit with that key, prints
// the MUST/SHOULD/MAY counts and each failure, stops Orchard with SIGTERM and exits non-zero on
// any failed MUST or SHOULD (or when Orchard does not stop cleanly).
//
//   GRAPHQL_HTTP_DIR=<folder with node_modules/graphql-http> AUDIT_ORCHARD=./orchard node .ci/graphql-http-audit.mjs
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(join(process.env.GRAPHQL_HTTP_DIR || process.cwd(), 'noop.js'));
const { auditServer } = require('graphql-http');

const dir = mkdtempSync(join(tmpdir(), 'orchard-audit-'));
const env = { ...process.env, ORCHARD_DATABASE: 'sqlite:' + join(dir, 'audit.db'), ORCHARD_LISTEN: '127.0.0.1:0' };
for (const k of Object.keys(env)) if (k.startsWith('ORCHARD_') && !['ORCHARD_DATABASE', 'ORCHARD_LISTEN'].includes(k)) delete env[k];
const orchard = spawn(process.env.AUDIT_ORCHARD || './orchard', [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
let stderr = '';
orchard.stderr.on('data', (b) => { stderr += b; });
const exited = new Promise((resolve) => orchard.on('exit', (code, signal) => resolve({ code, signal })));

const { base, key } = await new Promise((resolve, reject) => {
  let out = '';
  const timer = setTimeout(() => reject(new Error('orchard did not start in 30s:\n' + stderr)), 30000);
  orchard.stdout.on('data', (b) => {
    out += b;
    const base = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    const key = /orch_[A-Za-z0-9_-]+/.exec(out)?.[0];
    if (base && key) { clearTimeout(timer); resolve({ base, key }); }
  });
  orchard.on('exit', () => reject(new Error('orchard exited:\n' + stderr)));
});

// Every request carries the key, as a client's would (the audit itself sends none).
const fetchFn = (url, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('Authorization', 'Bearer ' + key);
  return fetch(url, { ...init, headers });
};
const results = await auditServer({ url: base + '/graphql', fetchFn });

const counts = {};
const failed = [];
for (const r of results) {
  const level = r.name.split(' ')[0]; // MUST, SHOULD or MAY
  counts[level] ??= { ok: 0, failed: 0 };
  if (r.status === 'ok') counts[level].ok++;
  else {
    counts[level].failed++;
    failed.push(r);
  }
}
for (const level of ['MUST', 'SHOULD', 'MAY']) {
  const c = counts[level] ?? { ok: 0, failed: 0 };
  console.log(`graphql-http audit: ${level.padEnd(6)} ${c.ok} passed, ${c.failed} failed`);
}
for (const r of failed) {
  let body = '';
  try { body = r.response ? (await r.response.text()).slice(0, 300) : ''; } catch { /* already read */ }
  console.log(`  ${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}${body ? '\n      body: ' + body : ''}`);
}

orchard.kill('SIGTERM');
const { code, signal } = await exited;
rmSync(dir, { recursive: true, force: true });
if (code !== 0) {
  console.log(`orchard exited with ${code ?? signal} after SIGTERM:\n${stderr.slice(-2000)}`);
  process.exit(1);
}
const bad = (counts.MUST?.failed ?? 0) + (counts.SHOULD?.failed ?? 0);
if (bad > 0) {
  console.log(`graphql-http audit: ${bad} MUST/SHOULD failed`);
  process.exit(1);
}
