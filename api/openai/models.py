"""Model names: the stable id of the model the workers serve, and the OpenAI names accepted as
aliases of it (a program written for OpenAI keeps its `model=` argument)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State

from api.openai.errors import OpenAIHTTPError
from contracts.worker import ReadyResponse

OWNER = "realtime-asr"
# OpenAI's speech-to-text model names (the SDK's AudioModel and Realtime transcription models);
# all of them run the one model served here. Diarization is not offered, so neither is its name.
ALIASES = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-realtime-whisper",
)


def served_model_id(worker: ReadyResponse) -> str:
    """`ASR_WORKER_MODEL` as a stable id: `embedded` is whisper base; a CTranslate2 directory
    goes by its name; a faster-whisper size (`medium`, `large-v3`) gets `whisper-` before it."""
    name = worker.model.rstrip("/")
    if name == "embedded":
        return "whisper-base"  # asr/embedded_model.py: the wheel-shipped whisper base
    if "/" in name:
        name = name.rsplit("/", 1)[-1]
    return name if "whisper" in name else f"whisper-{name}"


async def served_model(state: State) -> str:
    """The served model's id, asked of the pool once (503 while no worker is ready)."""
    served: str | None = getattr(state, "served_model", None)
    if served is None:
        info = await state.pool.worker_info()
        if info is None:
            raise OpenAIHTTPError(
                503, "no worker is ready yet", "overloaded", headers={"Retry-After": "5"}
            )
        served = state.served_model = served_model_id(info)
    return served


def resolve(requested: str | None, served: str) -> str | None:
    """The model that runs for a requested name (None or empty: the served one), or None when
    the name is neither the served model nor an alias."""
    if not requested or requested == served or requested in ALIASES:
        return served
    return None


def unknown_model_message(requested: str, served: str) -> str:
    return (
        f"model {requested!r} is not served here: use {served!r} or one of its aliases "
        f"({', '.join(ALIASES)})"
    )


def model_card(model_id: str, served: str, created: int) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": OWNER,
    }
    if model_id != served:
        card["root"] = served  # an alias: this is the model that runs
    return card


def model_list(served: str, created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [model_card(m, served, created) for m in (served, *ALIASES)],
    }
