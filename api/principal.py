"""Who is asking: the principal a request acts for, used for `created_by` and `updated_by`.

This release does not authenticate (put an authenticating proxy in front of it). The principal is
taken from the header such a proxy sets (`TAMS_PRINCIPAL_HEADER`, e.g. `X-Forwarded-User`), or
else from the user name of HTTP Basic credentials, one of the schemes TAMS clients use. It is
attribution, not authorisation: the service trusts whatever the front end passes on.
"""

from __future__ import annotations

import base64
import binascii
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

current_principal: ContextVar[str | None] = ContextVar("current_principal", default=None)


def principal_from_headers(headers: dict[str, str], trusted_header: str) -> str | None:
    if trusted_header and headers.get(trusted_header.lower()):
        return headers[trusted_header.lower()]
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


class PrincipalMiddleware:
    """Sets `current_principal` for the request, so every command it sends carries it."""

    def __init__(self, app: ASGIApp, trusted_header: str = "") -> None:
        self.app = app
        self.trusted_header = trusted_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = current_principal.set(principal_from_headers(headers, self.trusted_header))
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(token)
