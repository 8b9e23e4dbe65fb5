"""Clip audio and the whole-file transcription every streamed result is compared with."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from bench.scoring import Clip
from client.audio import read_audio_pcm16

SAMPLE_RATE = 16_000


@lru_cache(maxsize=8)
def pcm16(path: Path) -> bytes:
    """16 kHz mono PCM16 of any audio file (cached: the same clips are streamed many times)."""
    return read_audio_pcm16(path)


def pcm_slice(data: bytes, offset_sec: float, duration_sec: float | None) -> bytes:
    start = int(offset_sec * SAMPLE_RATE) * 2
    end = len(data) if duration_sec is None else start + int(duration_sec * SAMPLE_RATE) * 2
    return data[start:end]


@dataclass(frozen=True)
class WholeFile:
    """The worker's transcription of a whole clip (language given): text and word times."""

    clip_id: str
    text: str
    segments: list[dict[str, Any]]
    wall_sec: float
    inference_ms: float


class WholeFileCache:
    """One whole-file transcription per clip and run (the reference for quality and latency)."""

    def __init__(self, worker_url: str, beam_size: int = 5) -> None:
        self.worker_url = worker_url.rstrip("/")
        self.beam_size = beam_size
        self._done: dict[str, WholeFile] = {}

    def get(self, clip: Clip) -> WholeFile:
        if clip.id not in self._done:
            self._done[clip.id] = transcribe_whole(self.worker_url, clip.path, clip, self.beam_size)
        return self._done[clip.id]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            k: {"text": v.text, "wall_sec": round(v.wall_sec, 3), "inference_ms": v.inference_ms}
            for k, v in self._done.items()
        }


def transcribe_whole(worker_url: str, path: Path, clip: Clip, beam_size: int = 5) -> WholeFile:
    started = time.perf_counter()
    with path.open("rb") as fh:
        response = httpx.post(
            f"{worker_url.rstrip('/')}/transcribe",
            files={"file": (path.name, fh)},
            data={"language": clip.language, "beam_size": str(beam_size)},
            timeout=1800,
        )
    response.raise_for_status()
    body = response.json()
    return WholeFile(
        clip_id=clip.id,
        text=body["text"],
        segments=body["segments"],
        wall_sec=time.perf_counter() - started,
        inference_ms=body.get("timing", {}).get("inference_ms", 0.0),
    )


def select(
    manifest: dict[str, Clip], ids: list[str] | None = None, max_sec: float | None = None
) -> list[Clip]:
    """Clips by id (in the order given), else every clip up to max_sec, in manifest order."""
    if ids:
        missing = [i for i in ids if i not in manifest]
        if missing:
            raise SystemExit(f"not in the manifest: {', '.join(missing)}")
        return [manifest[i] for i in ids]
    return [c for c in manifest.values() if max_sec is None or c.duration_s <= max_sec]
