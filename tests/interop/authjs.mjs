// Bridge to Auth.js's own packages for the Auth.js interop tests: @auth/core (v5) and
// next-auth@4, each with its own `encode`, `decode` and `getToken`, and their cookie
// chunking (`SessionStore`). Reads one JSON array of requests on stdin, writes one JSON
// array of answers on stdout (one node process per test, however many tokens).
//   {"op":"encode","version":5|4,"secret":"s"|["s",...],"salt":"cookie name","token":{...},"maxAge":n}
//     -> {"token":"..."}
//   {"op":"decode","version":5|4,"secret":...,"salt":"...","token":"..."}
//     -> {"payload":{...}} or {"error":"..."}
//   {"op":"getToken","version":5|4,"secret":...,"secureCookie":bool,"cookie":"a=b; c=d"}
//     -> {"payload":{...}|null}: the package reads the Cookie header (chunks and all) itself
//   {"op":"chunk","version":5|4,"name":"...","value":"...","secure":bool}
//     -> {"cookies":[{"name","value","options"}]}: how the package itself would set the cookie
import { createRequire } from 'node:module';
import * as v5 from '@auth/core/jwt';
import { SessionStore as SessionStore5 } from './node_modules/@auth/core/lib/utils/cookie.js';
import { readStdin } from './stdin.mjs';

const require = createRequire(import.meta.url);
const v4 = require('next-auth/jwt');
const { SessionStore: SessionStore4 } = require('./node_modules/next-auth/core/lib/cookie.js');

const input = await readStdin();

const quiet = { debug() {}, error() {}, warn() {} };

function parseCookies(header) {
  const out = {};
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const name = part.slice(0, at).trim();
    if (!(name in out)) out[name] = part.slice(at + 1).trim();
  }
  return out;
}

async function handle(req) {
  const lib = req.version === 4 ? v4 : v5;
  switch (req.op) {
    case 'encode':
      return { token: await lib.encode({ token: req.token, secret: req.secret, salt: req.salt, maxAge: req.maxAge }) };
    case 'decode':
      try {
        return { payload: await lib.decode({ token: req.token, secret: req.secret, salt: req.salt }) };
      } catch (e) {
        return { error: String(e?.code ?? e?.message ?? e) };
      }
    case 'getToken': {
      const cookies = parseCookies(req.cookie);
      const request = req.version === 4
        ? { cookies, headers: { cookie: req.cookie } }
        : { headers: { cookie: req.cookie } };
      const payload = await lib.getToken({ req: request, secret: req.secret, secureCookie: req.secureCookie, logger: quiet });
      return { payload };
    }
    case 'chunk': {
      const option = { name: req.name, options: { httpOnly: true, sameSite: 'lax', path: '/', secure: req.secure } };
      const store = req.version === 4
        ? new SessionStore4(option, { cookies: {}, headers: {} }, quiet)
        : new SessionStore5(option, {}, quiet);
      return { cookies: store.chunk(req.value, {}) };
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const answers = [];
for (const req of JSON.parse(input)) answers.push(await handle(req));
process.stdout.write(JSON.stringify(answers));
