"""Request-scoped helpers: who is calling (API key), and from which origin."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from api.auth import ANONYMOUS, presented_key


def authenticate(connection: HTTPConnection) -> str | None:
    """The caller's key name; ANONYMOUS when keys are not required; None when refused."""
    state = connection.app.state
    name: str | None = state.keys.identify(presented_key(connection))
    if name is not None:
        return name
    return None if state.settings.auth_required else ANONYMOUS


def require_key(connection: HTTPConnection) -> str:
    name = authenticate(connection)
    if name is None:
        raise HTTPException(
            401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return name


CallerKey = Annotated[str, Depends(require_key)]


def origin_allowed(connection: HTTPConnection) -> bool:
    """Cross-site WebSocket hijacking guard: a browser always sends Origin; programs may not."""
    allowed = connection.app.state.settings.allowed_origins
    origin = connection.headers.get("origin")
    return not allowed or origin is None or origin in allowed
