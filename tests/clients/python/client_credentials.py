"""The Python MCP SDK's `ClientCredentialsOAuthProvider` with a confidential
client an operator registered (`sekisho-authz clients register --confidential
--grant-type client_credentials`): token from /oauth/token, then
`tools/list` and `tools/call whoami` through Envoy.

Environment:
  SEKISHO_MCP_URL         the instance's MCP endpoint
  SEKISHO_ISSUER          the authorization server's issuer (PUBLIC_BASE_URL)
  SEKISHO_CLIENT_ID       the registered client
  SEKISHO_CLIENT_SECRET   its secret (never printed)
  SEKISHO_SCOPE           optional: the scope to ask for

Prints one JSON report on stdout; exit code 0 when everything worked.
"""

from __future__ import annotations

import os
from typing import Any

from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from sekisho_client import MemoryStorage, authed_http_client, list_and_whoami, mcp_client, run, setting


async def main() -> dict[str, Any]:
    url = setting("SEKISHO_MCP_URL")
    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=storage,
        client_id=setting("SEKISHO_CLIENT_ID"),
        client_secret=setting("SEKISHO_CLIENT_SECRET"),
        scope=os.environ.get("SEKISHO_SCOPE") or None,
        issuer=setting("SEKISHO_ISSUER"),
    )
    async with authed_http_client(auth=provider) as http, mcp_client(url, http) as client:
        report = await list_and_whoami(client)
    tokens = storage.tokens
    report.update(
        {
            "tokens_stored": storage.tokens_stored,
            "granted_scope": tokens.scope if tokens else None,
            "has_refresh_token": bool(tokens and tokens.refresh_token),
        }
    )
    return report


if __name__ == "__main__":
    run(main)
