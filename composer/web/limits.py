"""ASGI middleware: oversized bodies, foreign Host names and cross-site posts are refused.

A body is refused with 413 before any of it is read when its ``Content-Length`` says it
is too big, and, for bodies without one (chunked) or that lie, as soon as the bytes
received pass the limit: the application then sees the client as gone, and whatever it
tries to answer afterwards is dropped. A server bound to this machine answers only
requests addressed to a local name (``Host: localhost`` or a loopback address), which
stops a web page from reaching it through a DNS name of its own (DNS rebinding). A
``POST`` whose ``Origin`` is another site's (a page elsewhere submitting a form to this
server) is refused with 403.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def too_large_message(max_bytes: int) -> str:
    return (f"the upload is larger than this server's limit of {max_bytes / 1e6:g} MB "
            "(composer serve --max-upload-mb)")


async def send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Refuse request bodies larger than ``max_bytes`` (by header, then while streaming),
    Host names outside ``allowed_hosts`` (None: any) and cross-site posts."""

    def __init__(self, app: ASGIApp, max_bytes: int, message_bytes: int | None = None,
                 allowed_hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = too_large_message(message_bytes or max_bytes)
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.allowed_hosts is not None and host_name(headers.get(b"host", b"")) not in self.allowed_hosts:
            await send_error(send, 400, "this server answers only to a local address "
                             "(http://127.0.0.1 or http://localhost)")
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, "a malformed Content-Length header")
                return
            if declared > self.max_bytes:
                await send_error(send, 413, self.message)  # not one byte of the body read
                return
        if scope.get("method") == "POST" and not _same_origin(headers):
            await send_error(send, 403, "a request from another site's page was refused")
            return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await send_error(send, 413, self.message)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 went out; what the app says after it is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


def _same_origin(headers: dict[bytes, bytes]) -> bool:
    """False for a browser's cross-site request (its Origin is not this server)."""
    origin = headers.get(b"origin")
    if origin is None:  # not from a browser page (curl, scripts): no cross-site risk
        site = headers.get(b"sec-fetch-site", b"")
        return site not in (b"cross-site",)
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return urlsplit(origin.decode("latin-1")).netloc.lower() == host


def host_name(host: bytes) -> str:
    """The name in a Host header, without its port: ``[::1]:8000`` → ``::1``."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
