// Shared by the Node client scripts: settings from the environment, a
// headless "browser" for the authorization step, and one JSON report on
// stdout. The scripts never print a token, code, key or secret.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** How many redirects inside the authorization server are followed. */
const MAX_HOPS = 10;

export class ClientError extends Error {}

export function setting(name) {
  const value = process.env[name];
  if (!value) throw new ClientError(`environment variable ${name} is not set (the Rust test passes it)`);
  return value;
}

export function packageVersion(name) {
  return require(`${name}/package.json`).version;
}

/**
 * GETs `authorizationUrl` without following redirects, follows those that stay
 * on its origin (carrying cookies), and stops at the first Location that
 * points at `redirectUri`. Returns its `code`, `state`, `iss` and the hops
 * taken (paths only: queries carry codes).
 */
export async function headlessAuthorize(authorizationUrl, redirectUri) {
  const origin = new URL(authorizationUrl).origin;
  const cookies = new Map();
  const hops = [];
  let url = new URL(authorizationUrl);
  for (let i = 0; i < MAX_HOPS; i++) {
    const headers = {};
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, { redirect: 'manual', headers });
    hops.push(`${response.status} ${url.pathname}`);
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      if (at > 0) cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    const location = response.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) {
      const page = (await response.text()).slice(0, 300).replace(/\s+/g, ' ');
      throw new ClientError(
        `GET ${url.pathname} answered ${response.status} without a redirect (expected one to the client; page starts: ${JSON.stringify(page)})`,
      );
    }
    const target = new URL(location, url);
    if (target.href.startsWith(redirectUri)) {
      const params = target.searchParams;
      if (params.get('error')) {
        throw new ClientError(`the authorization server refused: ${params.get('error')} ${params.get('error_description') ?? ''}`.trim());
      }
      if (!params.get('code')) throw new ClientError('the redirect to the client carries neither code nor error');
      return { code: params.get('code'), state: params.get('state'), iss: params.get('iss'), hops };
    }
    if (target.origin !== origin) throw new ClientError(`redirected off the authorization server to ${target.origin}`);
    url = target;
  }
  throw new ClientError(`more than ${MAX_HOPS} redirects inside the authorization server: ${hops.join(', ')}`);
}

/** The JSON that the demo server's `whoami` tool returned. */
export function whoamiReport(result) {
  if (result.isError) throw new ClientError(`whoami returned an error: ${JSON.stringify(result.content)}`);
  const text = result.content?.find((c) => c.type === 'text')?.text;
  if (text === undefined) throw new ClientError(`whoami returned no text content: ${JSON.stringify(result.content)}`);
  return JSON.parse(text);
}

/** One line per error, with causes. */
export function describe(error) {
  if (error instanceof AggregateError) return error.errors.map(describe).join('; ');
  let text = `${error?.name ?? 'Error'}: ${error?.message ?? String(error)}`;
  if (error?.cause) text += ` (cause: ${describe(error.cause)})`;
  return text;
}

/**
 * Runs `main()` (async, returning the report) and prints one JSON line: the
 * report with `ok: true`, or `ok: false` and the error. Exit code 0 or 1.
 */
export async function run(main, base = {}) {
  const report = { ...base };
  let code = 0;
  try {
    Object.assign(report, await main());
    report.ok = true;
  } catch (error) {
    report.ok = false;
    report.error = describe(error);
    console.error(error?.stack ?? error);
    code = 1;
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = code;
}
