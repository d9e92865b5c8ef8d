// The consent page in a real browser: Debian's headless Chromium driven by
// playwright-core. Opens the authorization URL the Rust test built (a client
// it registered), reads the consent page, saves a screenshot, clicks
// Approve or Deny and waits until the browser arrives at the client's
// redirect URI (a loopback listener in the Rust test, which reads the code
// or the error there itself).
//
// Environment:
//   SEKISHO_AUTHORIZE_URL  the /oauth/authorize URL to open
//   SEKISHO_REDIRECT_URI   the client's redirect URI
//   SEKISHO_DECISION       approve | deny
//   SEKISHO_CHROMIUM       the Chromium binary
//   SEKISHO_PROFILE_DIR    a fresh, empty user-data directory
//   SEKISHO_SCREENSHOT     where to save the consent page as PNG
//
// Prints one JSON report on stdout (page text, security headers, where the
// browser ended up — path only); exit code 0 when everything worked.

import { chromium } from 'playwright-core';

import { ClientError, packageVersion, run, setting } from './common.mjs';

const NAVIGATION_TIMEOUT_MS = 20_000;

/** As the project's machines need it: headless, as root, no network beyond loopback. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const SECURITY_HEADERS = [
  'content-security-policy',
  'x-frame-options',
  'referrer-policy',
  'x-content-type-options',
  'cache-control',
  'content-type',
  'strict-transport-security',
];

async function main() {
  const authorizeUrl = setting('SEKISHO_AUTHORIZE_URL');
  const redirectUri = setting('SEKISHO_REDIRECT_URI');
  const decision = setting('SEKISHO_DECISION');
  if (!['approve', 'deny'].includes(decision)) throw new ClientError(`SEKISHO_DECISION must be approve or deny, not ${decision}`);

  const context = await chromium.launchPersistentContext(setting('SEKISHO_PROFILE_DIR'), {
    executablePath: setting('SEKISHO_CHROMIUM'),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 900, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(NAVIGATION_TIMEOUT_MS);
    const consoleErrors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text().slice(0, 300));
    });

    const response = await page.goto(authorizeUrl, { waitUntil: 'load' });
    if (!response) throw new ClientError('no response for the authorization URL');
    const headers = response.headers();
    const securityHeaders = Object.fromEntries(SECURITY_HEADERS.filter((h) => h in headers).map((h) => [h, headers[h]]));
    const consent = {
      status: response.status(),
      path: new URL(page.url()).pathname,
      title: await page.title(),
      heading: (await page.locator('h1').first().innerText()).trim(),
      text: (await page.locator('body').innerText()).trim(),
      buttons: (await page.locator('form button').allInnerTexts()).map((t) => t.trim()),
      form_action: await page.locator('form').first().getAttribute('action'),
      security_headers: securityHeaders,
    };
    await page.screenshot({ path: setting('SEKISHO_SCREENSHOT'), fullPage: true });

    const button = page.locator(`form button[value="${decision}"]`);
    if ((await button.count()) !== 1) throw new ClientError(`the consent page has no single ${decision} button`);
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(redirectUri), { waitUntil: 'load' }),
      button.click(),
    ]);
    const landed = new URL(page.url());
    return {
      consent,
      decision,
      landed_origin: landed.origin,
      landed_path: landed.pathname,
      landed_params: [...landed.searchParams.keys()].sort(),
      landed_text: (await page.locator('body').innerText()).trim(),
      console_errors: consoleErrors,
    };
  } finally {
    await context.close();
  }
}

await run(main, {
  sdk: 'browser',
  playwright_core_version: packageVersion('playwright-core'),
  browser: 'chromium',
});
