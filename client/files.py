"""Client of `POST /v1/audio/transcriptions`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx


async def transcribe_file(
    base_url: str,
    path: str | Path,
    response_format: str = "json",
    request_timeout_sec: float = 600.0,
    **form: Any,
) -> Any:
    """Transcribe a file; returns parsed JSON for json formats, else the text body."""
    data = {"response_format": response_format, **{k: str(v) for k, v in form.items()}}
    path = Path(path)
    content = await asyncio.to_thread(path.read_bytes)
    async with httpx.AsyncClient(
        base_url=base_url.rstrip("/"), timeout=request_timeout_sec
    ) as http:
        response = await http.post(
            "/v1/audio/transcriptions", files={"file": (path.name, content)}, data=data
        )
    response.raise_for_status()
    return response.json() if response_format.endswith("json") else response.text
