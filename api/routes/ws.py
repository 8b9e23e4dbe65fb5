"""`WS /ws/transcribe`: the streaming protocol (docs/protocol.md)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, WebSocket

from api.auth import SUBPROTOCOL, offered_subprotocols
from api.connection import CLOSE_POLICY, Connection
from api.dependencies import authenticate, origin_allowed
from contracts.events import ErrorCode, ErrorEvent

router = APIRouter()


@router.websocket("/ws/transcribe")
async def transcribe_stream(websocket: WebSocket) -> None:
    # select our protocol name, never the key's "bearer.<key>" entry (browsers would reject
    # an answer they did not offer, and the key would travel back in a header)
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(websocket) else None
    await websocket.accept(subprotocol=subprotocol)
    # refused after accepting, with a reason: a browser cannot read a handshake refusal
    if not origin_allowed(websocket):
        await _refuse(websocket, ErrorCode.forbidden_origin, "this page's origin is not allowed")
        return
    key_name = authenticate(websocket)
    if key_name is None:
        await _refuse(websocket, ErrorCode.unauthorized, "a valid API key is required")
        return
    structlog.contextvars.clear_contextvars()
    await Connection(websocket, key_name).serve()


async def _refuse(websocket: WebSocket, code: ErrorCode, message: str) -> None:
    websocket.app.state.metrics.errors.labels(code.value).inc()
    await websocket.send_text(ErrorEvent(code=code, message=message, fatal=True).model_dump_json())
    await websocket.close(CLOSE_POLICY, code.value)
