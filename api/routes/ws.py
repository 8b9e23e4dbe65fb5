"""`WS /ws/transcribe`: the streaming protocol (docs/protocol.md)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, WebSocket

from api.connection import Connection

router = APIRouter()


@router.websocket("/ws/transcribe")
async def transcribe_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    connection = Connection(websocket)
    structlog.contextvars.clear_contextvars()
    await connection.serve()
