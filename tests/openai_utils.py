"""The official `openai` SDK as the judge of what the gateway sends: every Realtime server event
is validated against the SDK's own model for its type."""

from __future__ import annotations

from typing import Any, get_args

from openai.types.realtime import RealtimeServerEvent

_UNION = get_args(RealtimeServerEvent)[0]
SDK_EVENTS: dict[str, Any] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls for cls in get_args(_UNION)
}
BETA_ONLY = {"transcription_session.updated"}  # the beta shape (no GA model in the SDK)


def check_realtime_event(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate (strictly, with pydantic) against the SDK's model of the event's type."""
    kind = payload.get("type")
    if kind in BETA_ONLY:
        assert isinstance(payload.get("session"), dict) and payload.get("event_id"), payload
        return payload
    assert kind in SDK_EVENTS, f"{kind!r} is no server event the SDK knows"
    SDK_EVENTS[kind].model_validate(payload)
    return payload


# ---- the gateway the OpenAI tests talk to --------------------------------------------------------

KEY = "sk-test-openai-drop-in"  # the SDK always sends a key: the gateway here requires one
GOOD_ORIGIN = "https://good.example"
MAX_APPEND_BYTES = 256 * 1024  # ASR_MAX_FRAME_BYTES: a Realtime append's decoded audio
MAX_FILE_BYTES = 1_000_000
MAX_FILE_SEC = 25
PIECE_SEC = 10  # files are cut into pieces of <= 10 s: jfk (11 s) streams as two pieces


def openai_gateway_env() -> dict[str, str]:
    from api.auth import digest

    return {
        "ASR_AUTH_REQUIRED": "true",
        "ASR_API_KEYS": f"tests:{digest(KEY)}",
        "ASR_ALLOWED_ORIGINS": GOOD_ORIGIN,
        "ASR_MAX_FRAME_BYTES": str(MAX_APPEND_BYTES),
        "ASR_FILE_MAX_BYTES": str(MAX_FILE_BYTES),
        "ASR_FILE_MAX_SEC": str(MAX_FILE_SEC),
        "ASR_FILE_PIECE_MAX_SEC": str(PIECE_SEC),
    }
