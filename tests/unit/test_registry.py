"""Session admission: the global limit always, the per-key limit only for real keys."""

from __future__ import annotations

from api.auth import ANONYMOUS
from api.registry import SessionRegistry


def test_per_key_limit_applies_to_keys_not_to_anonymous_sessions() -> None:
    registry = SessionRegistry(max_sessions=3, max_per_key=1, transcript_ttl_sec=60)
    registry.opened("key-a")
    assert registry.admit("key-a") == "this key is at its limit of 1 sessions"
    assert registry.admit("key-b") is None
    registry.opened(ANONYMOUS)
    assert registry.admit(ANONYMOUS) is None  # auth off: only the global limit counts
    registry.opened(ANONYMOUS)
    assert registry.admit(ANONYMOUS) == "the gateway is at its limit of 3 sessions"
    registry.closed("key-a")
    assert registry.admit("key-a") is None
