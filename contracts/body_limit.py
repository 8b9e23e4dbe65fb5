"""Request body limit as plain ASGI middleware (both services): refuse early by
Content-Length, count chunked bodies as they arrive.

A body that grows past the limit while the app reads it is refused by raising the exception
`too_large(message)` builds; the services pass FastAPI's `HTTPException(413, ...)`, which body
parsing lets through unchanged, so this module needs no web framework. A body refused early, by
its Content-Length, gets `refusal(path, message)` as its JSON (the gateway answers OpenAI's
error shape on `/v1/*`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        too_large: Callable[[str], Exception],
        refusal: Callable[[str, str], bytes] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.refusal = refusal or detail_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = self.refusal(scope.get("path", ""), too_large_message(self.max_bytes))
            await _send_413(send, body)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large(too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited, send)


def too_large_message(limit: int) -> str:
    return f"upload too large: the limit is {limit} bytes"


def detail_body(path: str, message: str) -> bytes:
    return json.dumps({"detail": message, "code": "too_large"}).encode()


async def _send_413(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
