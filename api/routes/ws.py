"""`WS /ws/transcribe`: the streaming protocol (docs/protocol.md)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, WebSocket

from api.auth import SUBPROTOCOL, offered_subprotocols
from api.connection import CLOSE_POLICY, Connection
from api.dependencies import authenticate, origin_allowed
from api.events import ErrorCode, ErrorEvent

router = APIRouter()


@router.websocket("/ws/transcribe")
async def transcribe_stream(websocket: WebSocket) -> None:
    # select our protocol name, never the key's "bearer.<key>" entry (browsers would reject
    # an answer they did not offer, and the key would travel back in a header)
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(websocket) else None
    metrics = websocket.app.state.metrics
    if not origin_allowed(websocket):
        metrics.errors.labels("forbidden_origin").inc()
        await websocket.close(CLOSE_POLICY, "origin not allowed")
        return
    key_name = authenticate(websocket)
    await websocket.accept(subprotocol=subprotocol)
    if key_name is None:
        metrics.errors.labels(ErrorCode.unauthorized.value).inc()
        error = ErrorEvent(
            code=ErrorCode.unauthorized, message="a valid API key is required", fatal=True
        )
        await websocket.send_text(error.model_dump_json())
        await websocket.close(CLOSE_POLICY, "unauthorized")
        return
    structlog.contextvars.clear_contextvars()
    await Connection(websocket, key_name).serve()
