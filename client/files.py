"""Client of `POST /v1/audio/transcriptions`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


async def transcribe_file(
    base_url: str,
    path: str | Path,
    response_format: str = "json",
    timeout: float = 600.0,
    **form: Any,
) -> Any:
    """Transcribe a file; returns parsed JSON for json formats, else the text body."""
    data = {"response_format": response_format, **{k: str(v) for k, v in form.items()}}
    path = Path(path)
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout) as http:
        with path.open("rb") as fh:
            response = await http.post(
                "/v1/audio/transcriptions", files={"file": (path.name, fh)}, data=data
            )
    response.raise_for_status()
    return response.json() if response_format.endswith("json") else response.text
