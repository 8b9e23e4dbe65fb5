"""`GET /v1/sessions/{id}/transcript`: a finished session's transcript, for a while."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from api.dependencies import CallerKey

router = APIRouter()


@router.get("/v1/sessions/{session_id}/transcript")
async def session_transcript(session_id: str, request: Request, key: CallerKey) -> dict[str, Any]:
    body: dict[str, Any] | None = request.app.state.registry.transcript(session_id, key)
    if body is None:
        raise HTTPException(404, "no finished session with that id for this key (or it expired)")
    return body
