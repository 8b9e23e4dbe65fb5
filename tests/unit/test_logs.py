"""API keys never reach the logs, through structlog events or stdlib records (uvicorn)."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from contracts.logs import configure_logging, get_logger

SECRET = "sk-live-0123456789"


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


def test_keys_are_redacted_in_structlog_events_and_stdlib_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("DEBUG")
    log = get_logger("test")
    log.info(
        "request",
        url=f"/ws/transcribe?api_key={SECRET}&x=1",
        headers={"authorization": f"Bearer {SECRET}"},
        protocols=["asr.v1", f"bearer.{SECRET}"],
    )
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/ws/transcribe?api_key={SECRET}"
    )
    logging.getLogger("uvicorn.error").warning("offered %s", f"asr.v1, bearer.{SECRET}")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 3
    text = json.dumps(lines)
    assert SECRET not in text
    assert text.count("[redacted]") == 5
    assert lines[0]["url"] == "/ws/transcribe?api_key=[redacted]&x=1"
