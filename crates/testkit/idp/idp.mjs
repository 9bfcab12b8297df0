#!/usr/bin/env node
// Local OpenID Provider for integration tests, built on panva/oidc-provider.
//
//   node idp.mjs [PORT]            (PORT=0 or unset -> pick a free port)
//
// The FIRST line written to stdout is always:   issuer http://127.0.0.1:<port>
// Everything else (oidc-provider notices/warnings, request errors) goes to stderr.
//
// Configuration (all optional, JSON in environment variables):
//   PORT / argv[2]        port to listen on (default 0 = ephemeral)
//   IDP_CLIENTS           [{"client_id","client_secret","redirect_uris":[...]} , ...]
//   IDP_ACCOUNTS          [{"sub","email","email_verified","name","password"}, ...]
//   IDP_JWKS              {"keys":[<private RSA JWKs>]}  (default: one fresh RS256 key)
//   IDP_AUTO_CONSENT=1    skip the consent page (grant whatever was requested)
//   IDP_EXIT_ON_STDIN_EOF=1  exit when stdin is closed (orphan protection when the
//                         parent test process dies; spawn with stdin piped)
//   IDP_CODE_TTL          authorization code lifetime in seconds (default 60)
//
// Test-only admin endpoints (plain HTTP, no auth -- loopback test use only):
//   POST /_test/rotate    generate a new RS256 key and put it FIRST in the JWKS
//                         (new ID tokens use it; old keys are still published).
//                         Optional JSON body {"drop_old": true} removes old keys.
//                         Response: {"kid": "<new kid>", "kids": [...published kids]}
//   GET  /_test/state     {"issuer", "kids", "clients":[ids], "accounts":[subs]}
//   POST /_test/forge     the NEXT token response carries a forged ID token:
//                         {"claims": {…}} overrides claims (null removes one),
//                         {"shift": {"exp": -3600}} adds seconds to time claims,
//                         {"sign": "provider" | "foreign" | "none" | "hs256_public"}
//                         signs it with the provider's key (default), a key not
//                         in the JWKS, no signature (alg none), or HMAC-SHA256
//                         keyed with the provider's public key (PEM);
//                         {"sign": "foreign", "keep_kid": true} signs with a
//                         foreign key under the published key's id.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

// oidc-provider prints some notices with console.info (stdout). Keep stdout
// reserved for the single "issuer ..." line so a parent process can read it
// and then safely ignore / drain the pipe.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function newSigningKey() {
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, privateKey) => {
      if (err) return reject(err);
      const jwk = privateKey.export({ format: 'jwk' });
      return resolve({ ...jwk, kid: `k-${crypto.randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' });
    });
  });
}

// RSA key generation (~0.2-0.5 s) runs on the libuv threadpool while oidc-provider loads.
const firstKey = process.env.IDP_JWKS ? undefined : newSigningKey();
const { default: Provider } = await import('oidc-provider');

// ---------------------------------------------------------------- config --

function jsonEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  try {
    return JSON.parse(raw);
  } catch (err) {
    console.error(`idp: ${name} is not valid JSON: ${err.message}`);
    process.exit(2);
  }
}

const HOST = '127.0.0.1';
const PORT = Number(process.argv[2] ?? process.env.PORT ?? 0);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`idp: invalid port ${process.argv[2] ?? process.env.PORT}`);
  process.exit(2);
}

const CLIENTS = jsonEnv('IDP_CLIENTS', [
  { client_id: 'test-client', client_secret: 'test-secret', redirect_uris: ['http://127.0.0.1:8080/callback'] },
  { client_id: 'other-client', client_secret: 'other-secret', redirect_uris: ['http://127.0.0.1:8081/callback'] },
]).map((c) => ({
  token_endpoint_auth_method: 'client_secret_basic',
  response_types: ['code'],
  grant_types: ['authorization_code'],
  id_token_signed_response_alg: 'RS256',
  ...c,
}));

const ACCOUNTS = jsonEnv('IDP_ACCOUNTS', [
  { sub: 'alice-sub', email: 'alice@example.test', email_verified: true, name: 'Alice', password: 'pw' },
]);

const AUTO_CONSENT = process.env.IDP_AUTO_CONSENT === '1';
const CODE_TTL = Number(process.env.IDP_CODE_TTL ?? 60);

let jwks = jsonEnv('IDP_JWKS', null) ?? { keys: [await firstKey] };

// Cookie signing keys must be identical across provider instances (rotation swaps the instance).
const COOKIE_KEYS = [crypto.randomBytes(32).toString('base64url')];

// ------------------------------------------------------- storage adapter --
// One in-memory store shared by every Provider instance created in this
// process, so sessions / interactions / codes / grants survive a key rotation.

const store = new Map(); // key -> { payload, exp (ms epoch | undefined) }

function sget(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp !== undefined && e.exp <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e.payload;
}

class SharedMemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const exp = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(this.key(id), { payload, exp });
    if (this.model === 'Session' && payload.uid) store.set(`sessionUid:${payload.uid}`, { payload: id, exp });
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, exp });
  }

  async find(id) { return sget(this.key(id)); }

  async findByUid(uid) {
    const id = sget(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = sget(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const p = sget(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [key, e] of store) {
      if (e.payload && typeof e.payload === 'object' && e.payload.grantId === grantId) store.delete(key);
    }
  }
}

// ------------------------------------------------------------- accounts --

function findAccountBySub(sub) {
  return ACCOUNTS.find((a) => a.sub === sub);
}

function authenticate(login, password) {
  const acct = ACCOUNTS.find((a) => a.sub === login || (a.email && a.email === login));
  if (!acct || typeof password !== 'string') return undefined;
  const a = Buffer.from(String(acct.password ?? ''));
  const b = Buffer.from(password);
  return a.length === b.length && crypto.timingSafeEqual(a, b) ? acct : undefined;
}

// ------------------------------------------------------------ rendering --

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;
}

function loginPage(uid, { error, login } = {}) {
  return page('Sign-in', `${error ? `<p id="error" class="error">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label>Login <input type="text" name="login" id="login" value="${esc(login)}" required autofocus></label>
  <label>Password <input type="password" name="password" id="password" required></label>
  <button type="submit" id="submit">Sign-in</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function consentPage(uid, clientId, details) {
  const scopes = (details.missingOIDCScope ?? []).join(' ');
  const claims = (details.missingOIDCClaims ?? []).join(' ');
  return page('Authorize', `<p>Client <b id="client">${esc(clientId)}</b> requests: <span id="scopes">${esc(scopes)}</span>
${claims ? `(claims: <span id="claims">${esc(claims)}</span>)` : ''}</p>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
  <button type="submit" id="allow">Allow</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Deny</a></p>`);
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---------------------------------------------------- interactions (koa) --

function interactions(provider) {
  const re = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;

  async function grantConsent(details, session, params, grantId) {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    if (details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    return grant.save();
  }

  return async function interactionMiddleware(ctx, next) {
    const m = re.exec(ctx.path);
    if (!m) return next();
    ctx.set('cache-control', 'no-store');
    try {
      return await handle(ctx, m[1], m[2]);
    } catch (err) {
      // e.g. SessionNotFound when the _interaction cookie is missing/expired/for another uid
      if (ctx.respond === false) throw err; // response already written by interactionFinished
      ctx.status = err.statusCode ?? err.status ?? 500;
      ctx.type = 'html';
      ctx.body = page('Error', `<pre id="error"><b>error</b>: ${esc(err.error ?? err.name)}</pre>
<pre id="error_description"><b>error_description</b>: ${esc(err.error_description ?? err.message)}</pre>`);
      if (ctx.status >= 500) console.error('idp: interaction error', err);
      return undefined;
    }
  };

  async function handle(ctx, uid, action) {

    const details = await provider.interactionDetails(ctx.req, ctx.res); // throws SessionNotFound -> renderError
    if (details.uid !== uid) ctx.throw(400, 'interaction uid mismatch');
    const { prompt, params, session, grantId } = details;

    if (!action && ctx.method === 'GET') {
      if (prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage(uid, { login: params.login_hint });
        return undefined;
      }
      if (prompt.name === 'consent') {
        if (AUTO_CONSENT) {
          const id = await grantConsent(prompt.details, session, params, grantId);
          ctx.respond = false;
          return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
        }
        ctx.type = 'html';
        ctx.body = consentPage(uid, params.client_id, prompt.details);
        return undefined;
      }
      ctx.throw(501, `prompt ${prompt.name} not implemented`);
    }

    if (action === 'login' && ctx.method === 'POST') {
      if (prompt.name !== 'login') ctx.throw(400, 'login prompt not pending');
      const form = await readForm(ctx.req);
      const acct = authenticate(form.get('login'), form.get('password'));
      if (!acct) {
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage(uid, { error: 'Invalid login or password', login: form.get('login') });
        return undefined;
      }
      ctx.respond = false;
      return provider.interactionFinished(ctx.req, ctx.res, {
        login: { accountId: acct.sub, amr: ['pwd'], remember: false },
      }, { mergeWithLastSubmission: false });
    }

    if (action === 'confirm' && ctx.method === 'POST') {
      if (prompt.name !== 'consent') ctx.throw(400, 'consent prompt not pending');
      await readForm(ctx.req); // drain body; no fields needed
      const id = await grantConsent(prompt.details, session, params, grantId);
      ctx.respond = false;
      return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
    }

    if (action === 'abort' && ctx.method === 'GET') {
      ctx.respond = false;
      return provider.interactionFinished(ctx.req, ctx.res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
    }

    ctx.throw(405, 'method not allowed');
    return undefined;
  }
}

// -------------------------------------------------------------- provider --

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: SharedMemoryAdapter,
    clients: CLIENTS,
    jwks,
    cookies: {
      keys: COOKIE_KEYS,
      // explicit: v8 defaulted long cookies to SameSite=None, which Chromium drops on http (no Secure)
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    async findAccount(ctx, sub) {
      const acct = findAccountBySub(sub);
      if (!acct) return undefined;
      return {
        accountId: acct.sub,
        async claims() {
          const out = { sub: acct.sub };
          if (acct.email !== undefined) out.email = acct.email;
          if (acct.email_verified !== undefined) out.email_verified = acct.email_verified;
          if (acct.name !== undefined) out.name = acct.name;
          return out;
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    scopes: ['openid', 'email', 'profile'],
    conformIdTokenClaims: false, // put scope-requested claims (email, name) into the ID Token
    pkce: { required: () => true }, // S256 is the only method (v9: only one supported; v8: default)
    responseTypes: ['code'],
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: false },
    },
    // interactions.url default is `/interaction/${uid}` -- handled by interactions() below.
    clientBasedCORS: () => false,
    ttl: {
      AuthorizationCode: CODE_TTL,
      AccessToken: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    async renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<pre id="${esc(k)}"><b>${esc(k)}</b>: ${esc(v)}</pre>`).join('\n'));
      console.error('idp: renderError', out, error?.message);
    },
  });
  provider.use(forgery());
  provider.use(interactions(provider));
  provider.on('server_error', (ctx, err) => console.error('idp: server_error', err));
  return provider;
}

// ---------------------------------------------------------------- server --

let handler = (req, res) => { res.statusCode = 503; res.end('starting'); };
let issuer;

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? JSON.parse(text) : {};
}

function sendJson(res, status, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('cache-control', 'no-store');
  res.end(JSON.stringify(body));
}

// ------------------------------------------------------------- forgery --
// One-shot: the next token response's id_token is replaced, so relying-party
// tests can present every kind of bad token through the real code flow.

let pendingForge = null;

function forgeIdToken(token, spec) {
  const [h, p] = token.split('.');
  const original = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  for (const [claim, value] of Object.entries(spec.claims ?? {})) {
    if (value === null) delete payload[claim];
    else payload[claim] = value;
  }
  const now = Math.floor(Date.now() / 1000);
  for (const [claim, seconds] of Object.entries(spec.shift ?? {})) {
    payload[claim] = (payload[claim] ?? now) + seconds;
  }
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const sign = spec.sign ?? 'provider';
  if (sign === 'none') {
    return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(payload)}.`;
  }
  if (sign === 'hs256_public') {
    const header = { alg: 'HS256', typ: 'JWT', kid: original.kid };
    const input = `${encode(header)}.${encode(payload)}`;
    const publicPem = crypto.createPublicKey({ key: jwks.keys[0], format: 'jwk' })
      .export({ type: 'spki', format: 'pem' });
    const mac = crypto.createHmac('sha256', publicPem).update(input).digest('base64url');
    return `${input}.${mac}`;
  }
  const key = sign === 'foreign' ? spec.foreignKey : jwks.keys[0];
  // keep_kid: a foreign key under the published key's id (a forged signature).
  const header = { alg: 'RS256', typ: 'JWT', kid: spec.keep_kid ? original.kid : key.kid };
  const input = `${encode(header)}.${encode(payload)}`;
  const signature = crypto.sign('sha256', Buffer.from(input), crypto.createPrivateKey({ key, format: 'jwk' }));
  return `${input}.${signature.toString('base64url')}`;
}

function forgery() {
  return async (ctx, next) => {
    await next();
    if (pendingForge && ctx.path === '/token' && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
      const spec = pendingForge;
      pendingForge = null;
      ctx.body = { ...ctx.body, id_token: forgeIdToken(ctx.body.id_token, spec) };
    }
  };
}

async function admin(req, res) {
  const path = new URL(req.url, issuer).pathname;
  if (path === '/_test/rotate' && req.method === 'POST') {
    const body = await readJson(req);
    const key = await newSigningKey();
    jwks = { keys: body.drop_old ? [key] : [key, ...jwks.keys] };
    const next = buildProvider(issuer); // same issuer, clients, cookie keys, shared store
    handler = next.callback();
    return sendJson(res, 200, { kid: key.kid, kids: jwks.keys.map((k) => k.kid) });
  }
  if (path === '/_test/forge' && req.method === 'POST') {
    const spec = await readJson(req);
    if (spec.sign === 'foreign') spec.foreignKey = await newSigningKey();
    pendingForge = spec;
    return sendJson(res, 200, { armed: true });
  }
  if (path === '/_test/state' && req.method === 'GET') {
    return sendJson(res, 200, {
      issuer,
      kids: jwks.keys.map((k) => k.kid),
      clients: CLIENTS.map((c) => c.client_id),
      accounts: ACCOUNTS.map((a) => a.sub),
    });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/_test/')) {
    admin(req, res).catch((err) => sendJson(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) }));
    return;
  }
  handler(req, res);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  issuer = `http://${HOST}:${port}`;
  try {
    handler = buildProvider(issuer).callback();
  } catch (err) {
    console.error('idp: failed to configure provider:', err);
    process.exit(1);
  }
  process.stdout.write(`issuer ${issuer}\n`);
});

server.on('error', (err) => {
  console.error('idp: server error:', err.message);
  process.exit(1);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin EOF'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
