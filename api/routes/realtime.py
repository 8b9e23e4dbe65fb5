"""`WS /v1/realtime?intent=transcription`: OpenAI's Realtime API, transcription sessions
(docs/openai.md), on the gateway's session pipeline."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, WebSocket

from api.auth import OPENAI_SUBPROTOCOL, SUBPROTOCOL, offered_subprotocols
from api.connection import CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TRY_LATER
from api.dependencies import authenticate, origin_allowed
from api.openai.errors import OpenAIHTTPError
from api.openai.models import served_model
from api.openai.realtime_socket import RealtimeConnection
from api.openai.realtime_wire import RealtimeError, client_error, server_error

router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    # browsers offer ["realtime", "openai-insecure-api-key.<key>"]: select the protocol name,
    # never the key's entry (a browser rejects an answer it did not offer)
    offered = offered_subprotocols(websocket)
    chosen = next((p for p in (OPENAI_SUBPROTOCOL, SUBPROTOCOL) if p in offered), None)
    await websocket.accept(subprotocol=chosen)
    # refused after accepting, with a reason: a browser cannot read a handshake refusal
    if not origin_allowed(websocket):
        error = client_error("forbidden_origin", "this page's origin is not allowed")
        await _refuse(websocket, error, CLOSE_POLICY)
        return
    key = authenticate(websocket)
    if key is None:
        error = client_error("invalid_api_key", "a valid API key is required")
        await _refuse(websocket, error, CLOSE_POLICY)
        return
    if websocket.app.state.vad_model is None:
        # server VAD turns and prompt commits both rest on the gateway's VAD
        error = server_error("vad_disabled", "Realtime sessions need the gateway's VAD")
        await _refuse(websocket, error, CLOSE_INTERNAL)
        return
    try:
        served = await served_model(websocket.app.state)
    except OpenAIHTTPError as exc:
        await _refuse(websocket, server_error("overloaded", str(exc.detail)), CLOSE_TRY_LATER)
        return
    structlog.contextvars.clear_contextvars()
    intent = websocket.query_params.get("intent") == "transcription"
    await RealtimeConnection(websocket, key, served, intent).serve()


async def _refuse(websocket: WebSocket, error: RealtimeError, close_code: int) -> None:
    websocket.app.state.metrics.errors.labels(error.error.code or error.error.type).inc()
    await websocket.send_text(error.model_dump_json())
    await websocket.close(close_code, error.error.code or "")
