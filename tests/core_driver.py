"""The session core's replay (api/core/replay.py) plus recorded worker responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.core.replay import Respond, Run, drive, make_core
from api.core.steps import WindowRequest
from contracts.worker import DecodeOptions, TranscriptionResponse

FIXTURES = Path(__file__).resolve().parent / "fixtures"
__all__ = ["FIXTURES", "Recorded", "Respond", "Run", "drive", "make_core"]


class Recorded:
    """Worker responses recorded from the real model, looked up by what a request asks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fixture = json.loads(path.read_text()) if path.exists() else {}
        self.responses: dict[str, dict[str, Any]] = fixture.get("responses", {})

    def __call__(self, request: WindowRequest) -> TranscriptionResponse:
        entry = self.responses.get(request.key)
        assert entry is not None, (
            f"no recorded response for {request.key} in {self.path.name}: the policy asks "
            "for other windows than when it was recorded (python -m tests.record_fixtures)"
        )
        asked = request.options.model_dump()
        recorded = entry["options"]
        # an option added since the recording must be at its default there
        defaults = {k: DecodeOptions.model_fields[k].default for k in asked.keys() - recorded}
        assert {**defaults, **recorded} == asked, request.key
        return TranscriptionResponse.model_validate(entry["response"])
