"""`GET /v1/models`: the model the workers serve, under a stable id, and the OpenAI names that
run it (each with `root` naming the served model)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.dependencies import CallerKey
from api.openai.errors import OpenAIHTTPError
from api.openai.models import model_card, model_list, resolve, served_model

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request, key: CallerKey) -> dict[str, Any]:
    served = await served_model(request.app.state)
    return model_list(served, request.app.state.started_at)


@router.get("/v1/models/{model_id}")
async def retrieve_model(model_id: str, request: Request, key: CallerKey) -> dict[str, Any]:
    served = await served_model(request.app.state)
    if resolve(model_id, served) is None:
        raise OpenAIHTTPError(
            404, f"the model {model_id!r} does not exist here", "model_not_found", "model"
        )
    return model_card(model_id, served, request.app.state.started_at)
