// A real OpenID Connect provider (the OpenID-certified `oidc-provider`)
// standing in for Auth0 in Sekisho's tests and in `cargo xtask up
// --oidc-provider`. Started on loopback.
//
// Environment:
//   PORT            port to listen on (127.0.0.1)
//   CLIENT_ID       Sekisho's client id here        (default "sekisho")
//   CLIENT_SECRET   its secret                      (default "sekisho-secret")
//   REDIRECT_URI    Sekisho's callback              (required)
//   KEYS_FILE       where the signing keys are kept, so a restarted provider
//                   signs with the same keys (optional)
//   TEST_ONLY_MISBEHAVIOUR  "1": enables the test-only control endpoint below
//
// One user: `alice` / `wonderland`. Interactions, as a browser sees them:
// GET /interaction/:uid shows the login form (POST /interaction/:uid/login;
// its "Cancel" ends the login with error=access_denied), then the consent
// form (POST /interaction/:uid/confirm) naming the client and the scopes.
// Prints "listening <issuer>" when ready.
//
// Test-only misbehaviour (TEST_ONLY_MISBEHAVIOUR=1, never in `xtask up`):
//   POST /test-only/next-id-token  {"iss": …, "aud": …, "nonce": …, "exp": …}
// makes the NEXT token response carry an ID token with those claims
// replaced, re-signed with this provider's own signing key (same kid, same
// algorithm), so it verifies against the provider's JWKS and only the changed
// claim is wrong. A real provider never produces such tokens by itself, yet a
// relying party must refuse them: a token meant for another client (aud), a
// replay into another login (nonce), a stale token (exp), a token minted by
// another issuer with a key the relying party trusts (iss). A second provider
// instance cannot stand in for the last case: Sekisho only ever talks to the
// token endpoint its configured issuer's discovery names, so the only way a
// foreign `iss` reaches it is in this provider's answer.

import fs from 'node:fs';
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID || 'sekisho';
const clientSecret = process.env.CLIENT_SECRET || 'sekisho-secret';
const redirectUri = process.env.REDIRECT_URI;
if (!redirectUri) throw new Error('REDIRECT_URI is required');
const misbehaviourEnabled = process.env.TEST_ONLY_MISBEHAVIOUR === '1';

function signingKeys() {
  const file = process.env.KEYS_FILE;
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const keys = { keys: [{ ...rsa, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' }] };
  if (file) fs.writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

const jwks = signingKeys();

const USERS = {
  alice: { password: 'wonderland', claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', nickname: 'alice' } },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'Sekisho',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks,
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'nickname', 'picture'] },
  // Claims in the ID token itself (not only at userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['test-only-cookie-key-0123456789'] },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...user.claims }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

// ---- test-only misbehaviour: the next ID token, re-signed with one claim changed

let nextIdTokenClaims = null;

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

/** `token` with `changes` merged into its claims, signed again with our own key. */
function resign(token, changes) {
  const [header, payload] = token.split('.');
  const { alg, kid } = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (alg !== 'RS256' || !jwk) throw new Error(`cannot re-sign an ID token with alg ${alg} and kid ${kid}`);
  const claims = { ...JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), ...changes };
  const input = `${header}.${base64url(JSON.stringify(claims))}`;
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

if (misbehaviourEnabled) {
  provider.use(async (ctx, next) => {
    await next();
    if (nextIdTokenClaims && ctx.path === '/token' && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: resign(ctx.body.id_token, nextIdTokenClaims) };
      console.log(`test-only: the ID token just issued had ${Object.keys(nextIdTokenClaims).join(', ')} replaced`);
      nextIdTokenClaims = null;
    }
  });
}

async function misbehave(req, res) {
  const changes = JSON.parse((await readBody(req)) || '{}');
  if (typeof changes !== 'object' || Array.isArray(changes) || !Object.keys(changes).length) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    return res.end('expected a JSON object of claims to replace');
  }
  nextIdTokenClaims = changes;
  res.writeHead(204);
  return res.end();
}

// ---- the interaction pages a user sees

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

async function readForm(req) {
  return Object.fromEntries(new URLSearchParams(await readBody(req)));
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

async function interaction(req, res) {
  const [, , uid, action] = req.url.split('?')[0].split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;

  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (form.cancel) {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
    }
    const user = USERS[form.login];
    if (!user || user.password !== form.password) {
      return page(res, 401, 'Wrong credentials', `<p><a href="/interaction/${uid}">Try again</a></p>`);
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
  }
  if (prompt.name === 'login') {
    return page(res, 200, 'Sign in', `<form id="login" method="post" action="/interaction/${uid}/login">
<label>User <input name="login" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button><button type="submit" name="cancel" value="1">Cancel</button></form>`);
  }
  const client = await provider.Client.find(params.client_id);
  const scopes = (prompt.details.missingOIDCScope || []).map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  return page(res, 200, 'Authorize', `<p>${escapeHtml(client?.clientName || params.client_id)} asks for:</p><ul>${scopes}</ul>
<form id="consent" method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>`);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const fail = (e) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.message));
  };
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch(fail);
  } else if (misbehaviourEnabled && req.method === 'POST' && req.url === '/test-only/next-id-token') {
    misbehave(req, res).catch(fail);
  } else {
    callback(req, res);
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}${misbehaviourEnabled ? ' (test-only misbehaviour endpoint enabled)' : ''}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
