// The reference OAuth server for the service half of `cargo xtask bench`
// (SPEC P4): the OpenID-certified `oidc-provider`, configured to do the same
// work Sekisho does on the measured endpoints, so the ratio compares servers,
// not features:
//   - client_credentials for a confidential client (client_secret_basic) with
//     an RFC 8707 resource, answered with an ES256-signed JWT access token;
//   - open dynamic client registration (RFC 7591);
//   - the discovery document.
// Storage is oidc-provider's default in-memory adapter (Sekisho writes to its
// database: clients, and an audit row per issued token). Not used by tests.
//
// Environment: PORT, RESOURCE (the audience), CLIENT_ID, CLIENT_SECRET,
// SCOPE (space-separated). Prints "listening <issuer>" when ready.

import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const resource = process.env.RESOURCE;
const scope = process.env.SCOPE;
if (!port || !resource || !scope || !process.env.CLIENT_ID || !process.env.CLIENT_SECRET) {
  throw new Error('PORT, RESOURCE, SCOPE, CLIENT_ID and CLIENT_SECRET are required');
}
const issuer = `http://127.0.0.1:${port}`;

const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
    scope,
  }],
  // Its only key is an ES256 key; RS256 (the default) would have none.
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [{ ...ec, kid: crypto.randomUUID(), use: 'sig', alg: 'ES256' }] },
  scopes: scope.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience: resource,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

const server = provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
