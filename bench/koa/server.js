// The seed stack, written the way the seed apps are: Koa + koa-bodyparser +
// koa-jwt (HS256, same secret as the other contenders) + koa-proxies with a
// keep-alive agent, one node process. Used only by scripts/bench.sh.
//
// Env: BENCH_KOA_PORT, BENCH_UPSTREAM_PORT, BENCH_JWT_SECRET (all required),
//      BENCH_JWT_ISSUER (default "portcullis"), BENCH_JWT_AUDIENCE (default "api"),
//      BENCH_KOA_SECRET_MODE: "string" (default, as the seed apps and the koa-jwt README
//      write it) or "keyobject" (the secret passed as a crypto KeyObject).
//
// Why the mode matters: jsonwebtoken 9's verify() first tries crypto.createPublicKey()
// on a string secret and only falls back to createSecretKey() when that throws; with
// OpenSSL 3 the failed parse costs ~0.75 ms per request, about 30x the HS256 verify
// itself (~25 us). "keyobject" is the tuned variant that avoids it.
'use strict';

const crypto = require('crypto');

const Koa = require('koa');
const Router = require('@koa/router');
const bodyParser = require('koa-bodyparser');
const jwt = require('koa-jwt');
const proxy = require('koa-proxies');
const Agent = require('agentkeepalive');

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`server.js: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const port = Number(need('BENCH_KOA_PORT'));
const upstreamPort = Number(need('BENCH_UPSTREAM_PORT'));
const secretMode = process.env.BENCH_KOA_SECRET_MODE || 'string';
if (secretMode !== 'string' && secretMode !== 'keyobject') {
  console.error(`server.js: BENCH_KOA_SECRET_MODE must be "string" or "keyobject"`);
  process.exit(2);
}
const secret =
  secretMode === 'keyobject'
    ? crypto.createSecretKey(Buffer.from(need('BENCH_JWT_SECRET')))
    : need('BENCH_JWT_SECRET');
const issuer = process.env.BENCH_JWT_ISSUER || 'portcullis';
const audience = process.env.BENCH_JWT_AUDIENCE || 'api';

// Keep-alive to the upstream; without an agent http-proxy opens a connection per request.
const agent = new Agent({ maxSockets: 1024, maxFreeSockets: 1024, freeSocketTimeout: 30000 });

const app = new Koa();

// Unauthenticated health route (used by the bench's readiness poll).
const root = new Router();
root.get('/healthz', (ctx) => {
  ctx.body = { ok: true };
});

app.use(bodyParser());
app.use(root.routes());
app.use(root.allowedMethods());

// Everything under /api needs a valid HS256 token (signature, alg, exp, nbf, iss, aud).
app.use(
  jwt({ secret, algorithms: ['HS256'], issuer, audience }).unless({ path: [/^\/healthz$/] })
);

app.use(
  proxy('/api', {
    target: `http://127.0.0.1:${upstreamPort}`,
    changeOrigin: true,
    rewrite: (path) => path.replace(/^\/api/, '') || '/',
    agent,
    logs: false,
  })
);

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`koa bench server (secret as ${secretMode}) on 127.0.0.1:${port} -> 127.0.0.1:${upstreamPort}`);
});
// Keep client connections open as long as wrk wants them.
server.keepAliveTimeout = 75000;
server.headersTimeout = 76000;

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    agent.destroy();
    process.exit(0);
  });
}
