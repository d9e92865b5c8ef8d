"""The Python MCP SDK's streamable HTTP client with an API key in a custom
`X-API-Key` header (SPEC K): `tools/list` and `tools/call whoami` through
Envoy, no OAuth.

Environment:
  SEKISHO_MCP_URL   the instance's MCP endpoint (auth mode api_key or both)
  SEKISHO_API_KEY   the key (never printed)

Prints one JSON report on stdout; exit code 0 when everything worked.
"""

from __future__ import annotations

from typing import Any

from sekisho_client import authed_http_client, list_and_whoami, mcp_client, run, setting


async def main() -> dict[str, Any]:
    url = setting("SEKISHO_MCP_URL")
    headers = {"X-API-Key": setting("SEKISHO_API_KEY")}
    async with authed_http_client(headers=headers) as http, mcp_client(url, http) as client:
        return await list_and_whoami(client)


if __name__ == "__main__":
    run(main)
