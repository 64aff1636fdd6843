#!/usr/bin/env node
// Mints one JWT for scripts/bench.sh with node's built-in crypto only (no npm deps).
//
//   node bench/mint-token.js --alg HS256 --secret S [--kid bench] [--ttl 7200] [--exp-offset N]
//   node bench/mint-token.js --alg ES256 --key es256-private.pem [--kid bench-es]
//   node bench/mint-token.js --alg none                       (an unsigned token, for sanity checks)
//
// Header {"alg","typ":"at+jwt","kid"}; claims iss, aud, sub, iat, nbf, exp, jti, scope.
// --exp-offset N puts exp at now+N seconds (negative: an expired token) and iat/nbf an hour before.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
    console.error(`mint-token.js: bad argument ${argv[i]}`);
    process.exit(2);
  }
  args[argv[i].slice(2)] = argv[i + 1];
}

const alg = args.alg || 'HS256';
const kid = args.kid || (alg === 'ES256' ? 'bench-es' : 'bench');
const now = Math.floor(Date.now() / 1000);
let exp = now + Number(args.ttl || 7200);
let iat = now;
if (args['exp-offset'] !== undefined) {
  exp = now + Number(args['exp-offset']);
  iat = Math.min(now, exp) - 3600;
}

const b64 = (buf) => Buffer.from(buf).toString('base64url');
const header = { alg, typ: 'at+jwt', kid };
const claims = {
  iss: args.iss || 'portcullis',
  aud: args.aud || 'api',
  sub: args.sub || 'bench-user',
  iat,
  nbf: iat,
  exp,
  jti: crypto.randomUUID(),
  scope: args.scope || 'read write',
};
const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;

let sig;
switch (alg) {
  case 'HS256': {
    if (!args.secret) {
      console.error('mint-token.js: --secret is required for HS256');
      process.exit(2);
    }
    sig = crypto.createHmac('sha256', args.secret).update(input).digest();
    break;
  }
  case 'ES256': {
    if (!args.key) {
      console.error('mint-token.js: --key PEM is required for ES256');
      process.exit(2);
    }
    const key = crypto.createPrivateKey(fs.readFileSync(args.key));
    // JWS wants the raw r||s form (RFC 7518 3.4), not DER.
    sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    break;
  }
  case 'none':
    sig = Buffer.alloc(0);
    break;
  default:
    console.error(`mint-token.js: unsupported --alg ${alg}`);
    process.exit(2);
}

process.stdout.write(`${input}.${b64(sig)}\n`);
