// The whole user login in a real browser, through Envoy, with a real OpenID
// provider upstream (issue 4's acceptance): the MCP TypeScript SDK
// (StreamableHTTPClientTransport + an OAuthClientProvider) is the MCP client;
// when it needs an authorization, headless Chromium (playwright-core) opens
// the URL, is sent by Sekisho to the provider, signs in there, consents
// there, comes back to Sekisho's /oauth/callback, sees Sekisho's consent page
// and approves; the browser lands on the client's loopback redirect URI (a
// listener in this script). Then finishAuth(code), reconnect, tools/list and
// tools/call.
//
// Environment:
//   SEKISHO_MCP_URL          the instance's MCP endpoint (through Envoy)
//   SEKISHO_ISSUER           Sekisho's issuer, to check `iss`
//   SEKISHO_PROVIDER_ISSUER  the upstream provider's issuer: the browser must get there
//   SEKISHO_OIDC_LOGIN, SEKISHO_OIDC_PASSWORD   the user at the provider
//   SEKISHO_CHROMIUM         the Chromium binary
//   SEKISHO_PROFILE_DIR      a fresh, empty user-data directory
//   SEKISHO_TOKENS_FILE      optional: where the client keeps its tokens and
//                            client id (mode 0600), as a real client persists
//                            them; the Rust test reads them from there, never
//                            from the output
//
// Prints one JSON report on stdout (pages seen — origin kind, path, heading —
// the SDK's results); exit code 0 when everything worked.

import fs from 'node:fs';
import http from 'node:http';

import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { ClientError, packageVersion, run, setting, whoamiReport } from './common.mjs';

const STEP_TIMEOUT_MS = 30_000;
const CLIENT_NAME = 'Sekisho OIDC Browser Check';

/** Headless, as root, no network beyond loopback (see consent_browser.mjs). */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The client's loopback redirect URI: records what arrives, answers a page. */
function startRedirectListener() {
  const received = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/callback') received.push(url.searchParams);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Done</title><h1>Done</h1><p>The application received the answer.</p>');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, received, uri: `http://127.0.0.1:${server.address().port}/callback` });
    });
  });
}

/** OAuthClientProvider whose redirect is a real browser doing the whole login. */
class BrowserProvider {
  constructor(redirectUri, login) {
    this._redirectUri = redirectUri;
    this._login = login;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._discovery = undefined;
    this.pages = [];
  }

  get redirectUrl() {
    return this._redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
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
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
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
    await this._login(authorizationUrl.href, this.pages);
  }
}

/** Where the page is, without its query (codes and states live there). */
async function describePage(page, origins) {
  const url = new URL(page.url());
  const kind = Object.entries(origins).find(([, origin]) => origin === url.origin)?.[0] ?? url.origin;
  const heading = await page.locator('h1').first().innerText({ timeout: 2_000 }).catch(() => '');
  return { at: kind, path: url.pathname, heading: heading.trim() };
}

async function main() {
  const mcpUrl = new URL(setting('SEKISHO_MCP_URL'));
  const issuer = setting('SEKISHO_ISSUER');
  const providerIssuer = setting('SEKISHO_PROVIDER_ISSUER');
  const [login, password] = [setting('SEKISHO_OIDC_LOGIN'), setting('SEKISHO_OIDC_PASSWORD')];
  const redirect = await startRedirectListener();
  const origins = { sekisho: new URL(issuer).origin, provider: new URL(providerIssuer).origin, client: new URL(redirect.uri).origin };

  const context = await chromium.launchPersistentContext(setting('SEKISHO_PROFILE_DIR'), {
    executablePath: setting('SEKISHO_CHROMIUM'),
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT_MS);

    const browserLogin = async (authorizationUrl, pages) => {
      // Sekisho sends the browser on to the provider's sign-in page.
      await page.goto(authorizationUrl, { waitUntil: 'load' });
      pages.push(await describePage(page, origins));
      if (!page.url().startsWith(`${providerIssuer}/interaction/`)) {
        throw new ClientError(`expected the provider's sign-in page, got ${pages.at(-1).at} ${pages.at(-1).path}`);
      }
      await page.locator('input[name="login"]').fill(login);
      await page.locator('input[name="password"]').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      // The provider's own consent for Sekisho (its client there), at the same URL.
      const allow = page.getByRole('button', { name: 'Allow' });
      await allow.waitFor({ state: 'visible' });
      pages.push(await describePage(page, origins));
      await allow.click();
      // Back through Sekisho's /oauth/callback to Sekisho's consent page.
      const approve = page.locator('form button[value="approve"]');
      await approve.waitFor({ state: 'visible' });
      pages.push(await describePage(page, origins));
      await Promise.all([page.waitForURL((u) => u.href.startsWith(redirect.uri), { waitUntil: 'load' }), approve.click()]);
      pages.push(await describePage(page, origins));
    };
    const provider = new BrowserProvider(redirect.uri, browserLogin);

    // First connect: 401 → discovery → registration → the browser login.
    const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    try {
      await new Client({ name: 'sekisho-e2e-oidc', version: '1.0.0' }).connect(first);
      throw new ClientError('the first connect succeeded without an authorization');
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
    }
    const answer = redirect.received.at(-1);
    if (!answer) throw new ClientError('the browser never reached the redirect URI');
    if (answer.get('error')) throw new ClientError(`authorization refused: ${answer.get('error')} ${answer.get('error_description') ?? ''}`);
    if (answer.get('iss') !== issuer) throw new ClientError(`iss ${JSON.stringify(answer.get('iss'))} is not the issuer ${issuer}`);
    const code = answer.get('code');
    if (!code) throw new ClientError('the redirect carries no code');
    await first.finishAuth(code);
    await first.close();

    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    const client = new Client({ name: 'sekisho-e2e-oidc', version: '1.0.0' });
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const whoami = whoamiReport(await client.callTool({ name: 'whoami', arguments: {} }));
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'through the upstream login' } });
    await transport.terminateSession().catch(() => {});
    await client.close();

    const tokens = provider.tokens();
    const tokensFile = process.env.SEKISHO_TOKENS_FILE;
    if (tokensFile) {
      const stored = { client_id: provider.clientInformation()?.client_id, ...tokens };
      fs.writeFileSync(tokensFile, JSON.stringify(stored), { mode: 0o600 });
    }
    return {
      pages: provider.pages,
      tools,
      whoami,
      echo_is_error: Boolean(echo.isError),
      client_id: provider.clientInformation()?.client_id ?? null,
      granted_scope: tokens?.scope ?? null,
      has_refresh_token: Boolean(tokens?.refresh_token),
      redirects_received: redirect.received.length,
    };
  } finally {
    await context.close();
    redirect.server.close();
  }
}

await run(main, {
  sdk: 'typescript',
  sdk_version: packageVersion('@modelcontextprotocol/sdk'),
  playwright_core_version: packageVersion('playwright-core'),
  browser: 'chromium',
  node_version: process.versions.node,
});
