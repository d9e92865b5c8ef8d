// A real OpenID Connect provider (the OpenID-certified `oidc-provider`)
// standing in for Auth0 in Sekisho's tests. Started by the test on loopback.
//
// Environment:
//   PORT            port to listen on (127.0.0.1)
//   CLIENT_ID       Sekisho's client id here        (default "sekisho")
//   CLIENT_SECRET   its secret                      (default "sekisho-secret")
//   REDIRECT_URI    Sekisho's callback              (required)
//   KEYS_FILE       where the signing keys are kept, so a restarted provider
//                   signs with the same keys (optional)
//
// One user: `alice` / `wonderland`. Interactions: GET /interaction/:uid shows
// a login form (POST /interaction/:uid/login), with a "cancel" that ends the
// login with error=access_denied; consent is granted automatically.
// Prints "listening <issuer>" when ready.

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

function signingKeys() {
  const file = process.env.KEYS_FILE;
  if (file && fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const keys = { keys: [{ ...rsa, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' }] };
  if (file) fs.writeFileSync(file, JSON.stringify(keys));
  return keys;
}

const USERS = {
  alice: { password: 'wonderland', claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', nickname: 'alice' } },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: signingKeys(),
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

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const [, , uid, action] = req.url.split('?')[0].split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (form.cancel) {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
    }
    const user = USERS[form.login];
    if (!user || user.password !== form.password) {
      res.writeHead(401, { 'content-type': 'text/html' });
      return res.end('<p>wrong credentials</p>');
    }
    return provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'login') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(`<form method="post" action="/interaction/${uid}/login">
<input name="login"><input name="password" type="password">
<button type="submit">Sign in</button><button name="cancel" value="1">Cancel</button></form>`);
  }
  // Consent: granted automatically for what was asked.
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e && e.message));
    });
  } else {
    callback(req, res);
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
