// The MCP TypeScript SDK (@modelcontextprotocol/sdk 1.x), unmodified and
// headless: StreamableHTTPClientTransport with an OAuthClientProvider. The
// first connect gets a 401, discovers, registers (DCR) and hands us the
// authorization URL; we follow it without a browser (development login with
// auto-consent), finishAuth(code), connect again, then tools/list and
// tools/call whoami.
//
// Environment:
//   SEKISHO_MCP_URL        the instance's MCP endpoint
//   SEKISHO_REDIRECT_URI   the redirect URI to register (nothing listens there)
//   SEKISHO_ISSUER         the authorization server's issuer, to check `iss`
//   SEKISHO_SEND_STATE     optional, "1": the provider sends a `state` (by
//                          default it sends none, like the SDK's examples)
//
// Prints one JSON report on stdout; exit code 0 when everything worked.

import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { ClientError, headlessAuthorize, packageVersion, run, setting, whoamiReport } from './common.mjs';

/** OAuthClientProvider with in-memory storage and a headless redirect. */
class HeadlessProvider {
  constructor(redirectUri, sendState) {
    this._redirectUri = redirectUri;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this.authorization = undefined; // { code, state, iss, hops } of the last redirect
    this.authorizations = 0;
    this.registrations = 0;
    this.tokensSaved = 0;
    this.sentState = undefined;
    if (sendState) {
      this.state = () => {
        this.sentState = randomBytes(16).toString('base64url');
        return this.sentState;
      };
    }
  }

  get redirectUrl() {
    return this._redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: 'sekisho-e2e typescript sdk',
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
    this.registrations += 1;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokensSaved += 1;
  }

  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this._codeVerifier) throw new ClientError('no code verifier saved');
    return this._codeVerifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  async redirectToAuthorization(authorizationUrl) {
    this.authorizations += 1;
    this.authorizationParams = [...authorizationUrl.searchParams.keys()].sort();
    this.authorization = await headlessAuthorize(authorizationUrl.href, this._redirectUri);
  }
}

async function main() {
  const url = new URL(setting('SEKISHO_MCP_URL'));
  const redirectUri = setting('SEKISHO_REDIRECT_URI');
  const issuer = setting('SEKISHO_ISSUER');
  const provider = new HeadlessProvider(redirectUri, process.env.SEKISHO_SEND_STATE === '1');

  // First attempt: 401 → discovery → registration → redirectToAuthorization.
  const first = new StreamableHTTPClientTransport(url, { authProvider: provider });
  let firstOutcome = 'connected';
  try {
    await new Client({ name: 'sekisho-e2e', version: '1.0.0' }).connect(first);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    firstOutcome = 'unauthorized';
  }
  if (firstOutcome !== 'unauthorized' || !provider.authorization) {
    throw new ClientError(`expected the first connect to need an authorization, got: ${firstOutcome}`);
  }
  const { code, state, iss } = provider.authorization;
  // RFC 9207: the app checks `iss` (the SDK leaves it to us), and `state` if it sent one.
  if (iss !== issuer) throw new ClientError(`authorization response iss ${JSON.stringify(iss)} is not the issuer ${issuer}`);
  if ((state ?? undefined) !== provider.sentState) throw new ClientError('authorization response state does not match');
  await first.finishAuth(code);
  await first.close();

  // Second attempt with the token.
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  const client = new Client({ name: 'sekisho-e2e', version: '1.0.0' });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const whoami = whoamiReport(await client.callTool({ name: 'whoami', arguments: {} }));
  const protocolVersion = transport.protocolVersion;
  await transport.terminateSession().catch(() => {});
  await client.close();

  return {
    tools,
    whoami,
    protocol_version: protocolVersion,
    client_id: provider.clientInformation()?.client_id ?? null,
    registrations: provider.registrations,
    authorizations: provider.authorizations,
    authorization_params: provider.authorizationParams,
    authorization_hops: provider.authorization.hops,
    state_sent: provider.sentState !== undefined,
    state_returned: state !== null,
    tokens_saved: provider.tokensSaved,
    granted_scope: provider.tokens()?.scope ?? null,
    has_refresh_token: Boolean(provider.tokens()?.refresh_token),
  };
}

await run(main, {
  sdk: 'typescript',
  sdk_version: packageVersion('@modelcontextprotocol/sdk'),
  node_version: process.versions.node,
});
