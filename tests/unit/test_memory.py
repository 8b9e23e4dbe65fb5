"""The malloc settings a process re-executes itself with (contracts/process.py)."""

from __future__ import annotations

import sys

import pytest

from contracts import process as memory


def test_reexecs_once_with_the_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(memory.os, "execv", lambda path, argv: calls.append(argv))
    monkeypatch.setattr(sys, "argv", ["api/__main__.py", "--port", "9000"])
    monkeypatch.setattr(sys, "platform", "linux")
    memory.reexec_with_malloc_settings("api", memory.GATEWAY_MALLOC)
    assert calls == [[sys.executable, "-m", "api", "--port", "9000"]]
    assert memory.os.environ["MALLOC_MMAP_THRESHOLD_"] == "262144"
    memory.reexec_with_malloc_settings("api", memory.GATEWAY_MALLOC)  # after the exec: no loop
    assert len(calls) == 1


def test_an_operators_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(memory.os, "execv", lambda path, argv: calls.append(argv))
    monkeypatch.setattr(sys, "platform", "linux")
    memory.reexec_with_malloc_settings("api", memory.GATEWAY_MALLOC)
    assert len(calls) == 1
    assert memory.os.environ["MALLOC_ARENA_MAX"] == "4"
