"""The Python MCP SDK's `OAuthClientProvider`, headless: dynamic client
registration, authorization code with PKCE (the development login and
auto-consent end the authorization in redirects), then `tools/list` and
`tools/call whoami` through Envoy.

Environment:
  SEKISHO_MCP_URL        the instance's MCP endpoint, e.g. http://127.0.0.1:8080/mcp/demo
  SEKISHO_REDIRECT_URI   the redirect URI to register (nothing needs to listen there)
  SEKISHO_WAIT_SECONDS   optional: after the first call, wait this long (past the
                         access token's lifetime) and call `whoami` again, which
                         needs the SDK to refresh its token

Prints one JSON report on stdout; exit code 0 when everything worked.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientMetadata
from sekisho_client import (
    HeadlessBrowser,
    MemoryStorage,
    authed_http_client,
    list_and_whoami,
    mcp_client,
    optional_setting,
    run,
    setting,
    whoami,
)


async def main() -> dict[str, Any]:
    url = setting("SEKISHO_MCP_URL")
    redirect_uri = setting("SEKISHO_REDIRECT_URI")
    wait = float(optional_setting("SEKISHO_WAIT_SECONDS", "0"))

    storage = MemoryStorage()
    browser = HeadlessBrowser(redirect_uri)
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="sekisho-e2e python sdk",
            redirect_uris=[redirect_uri],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    report: dict[str, Any] = {}
    async with authed_http_client(auth=provider) as http, mcp_client(url, http) as client:
        report.update(await list_and_whoami(client))
        report["tokens_stored_before_wait"] = storage.tokens_stored
        if wait > 0:
            await anyio.sleep(wait)
            report["whoami_after_wait"] = await whoami(client)

    tokens = storage.tokens
    report.update(
        {
            "client_id": storage.client_info.client_id if storage.client_info else None,
            "registrations": storage.registrations_stored,
            "authorizations": browser.authorizations,
            "authorization_hops": browser.hops,
            "tokens_stored": storage.tokens_stored,
            "token_type": tokens.token_type if tokens else None,
            "granted_scope": tokens.scope if tokens else None,
            "has_refresh_token": bool(tokens and tokens.refresh_token),
        }
    )
    return report


if __name__ == "__main__":
    run(main)
