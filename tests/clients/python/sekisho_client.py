"""Shared by the Python client scripts: reading the test's settings from the
environment, a headless "browser" for the authorization step, in-memory
token storage, and a JSON report on stdout.

The scripts talk only to Envoy's public listener, as a real client would.
They never print a token, code, key or secret: the report holds names,
counts and what the demo server's `whoami` tool saw.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken

# How many redirects the headless browser follows inside the authorization
# server before it gives up (login and consent hops).
MAX_HOPS = 10


class ClientError(Exception):
    """A failure the script reports as its error (no traceback needed)."""


def setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ClientError(f"environment variable {name} is not set (the Rust test passes it)")
    return value


def optional_setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


class MemoryStorage:
    """`mcp.client.auth.TokenStorage` in memory; counts what the SDK stores."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.tokens_stored = 0
        self.registrations_stored = 0

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.tokens_stored += 1

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info
        self.registrations_stored += 1


class HeadlessBrowser:
    """The user's browser, without a browser: the SDK's `redirect_handler`
    and `callback_handler`.

    `redirect_handler` GETs the authorization URL without following
    redirects, follows redirects that stay on the authorization server's
    origin itself (keeping its cookies), and stops at the first `Location`
    that points at the client's redirect URI. `callback_handler` hands the
    `code`, `state` and `iss` found there to the SDK.
    """

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.result: AuthorizationCodeResult | None = None
        self.authorizations = 0
        self.hops: list[str] = []  # paths only, never queries (they carry codes)

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorizations += 1
        self.result = None
        origin = _origin(authorization_url)
        url = authorization_url
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            for _ in range(MAX_HOPS):
                response = await browser.get(url)
                self.hops.append(f"{response.status_code} {urlsplit(url).path}")
                location = response.headers.get("location")
                if response.status_code not in (301, 302, 303, 307, 308) or not location:
                    snippet = response.text[:300].replace("\n", " ")
                    raise ClientError(
                        f"GET {urlsplit(url).path} answered {response.status_code} without a redirect "
                        f"(expected one to the client; page starts: {snippet!r})"
                    )
                target = urljoin(url, location)
                if target.startswith(self.redirect_uri):
                    self.result = _authorization_response(target)
                    return
                if _origin(target) != origin:
                    raise ClientError(f"redirected off the authorization server to {_origin(target)}")
                url = target
        raise ClientError(f"more than {MAX_HOPS} redirects inside the authorization server: {self.hops}")

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise ClientError("the authorization did not come back to the redirect URI")
        return self.result


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _authorization_response(url: str) -> AuthorizationCodeResult:
    query = parse_qs(urlsplit(url).query)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    if one("error"):
        description = one("error_description") or ""
        raise ClientError(f"the authorization server refused: {one('error')} {description}".strip())
    code = one("code")
    if not code:
        raise ClientError("the redirect to the client carries neither code nor error")
    return AuthorizationCodeResult(code=code, state=one("state"), iss=one("iss"))


def authed_http_client(auth: httpx2.Auth | None = None, headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    """The HTTP client the MCP transport uses, with MCP's usual timeouts."""
    timeout = httpx2.Timeout(30, read=120)
    return httpx2.AsyncClient(auth=auth, headers=headers, timeout=timeout)


def mcp_client(url: str, http: httpx2.AsyncClient) -> Client:
    return Client(streamable_http_client(url, http_client=http))


async def list_and_whoami(client: Client) -> dict[str, Any]:
    """`tools/list`, then `tools/call whoami`: the tool names and what the
    MCP server behind Envoy saw."""
    tools = await client.list_tools()
    names = sorted(tool.name for tool in tools.tools)
    return {"tools": names, "whoami": await whoami(client)}


async def whoami(client: Client) -> dict[str, Any]:
    result = await client.call_tool("whoami", {})
    if result.is_error:
        raise ClientError(f"whoami returned an error: {result.content}")
    text = next((c.text for c in result.content if getattr(c, "type", None) == "text"), None)
    if text is None:
        raise ClientError(f"whoami returned no text content: {result.content}")
    return json.loads(text)


def run(main: Any) -> None:
    """Runs `main()` (async, returning the report) and prints one JSON line:
    the report with `ok: true`, or `ok: false` and the error. Exit code 0 or 1."""
    report: dict[str, Any] = {"sdk": "python", "mcp_version": version("mcp"), "httpx2_version": version("httpx2")}
    try:
        report.update(anyio.run(main))
        report["ok"] = True
        code = 0
    except BaseException as error:  # noqa: BLE001 - every failure becomes the report
        report["ok"] = False
        report["error"] = describe(error)
        traceback.print_exc(file=sys.stderr)
        code = 1
    print(json.dumps(report, sort_keys=True))
    sys.exit(code)


def describe(error: BaseException) -> str:
    """One line per error, unwrapping exception groups (anyio task groups)."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(e) for e in error.exceptions)
    return f"{type(error).__name__}: {error}"
