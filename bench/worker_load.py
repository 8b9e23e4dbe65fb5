"""Worker load profile: N requests in flight against one worker (or the NGINX upstream), and
the CTranslate2 ceiling for the same windows.

`python -m bench --sections worker-load` (any worker: `--worker-url`; else it starts one, with
`--worker-env KEY=VALUE` for its settings). Windows are cut from the bench's clips (default 7 s,
as the GPU figure in docs/benchmarks.md: a window plus its context) and sent the way the
gateway sends a final window: raw PCM16, language given, beam 5, temperature 0.0, word
timestamps, the window as its one speech span (so no worker VAD runs). Each client keeps one
request in flight; the run is bounded by a count of windows and by time.

Reported: windows/s, latency p50/p95 (request sent to answer received), the batch-size
histogram, and per window the time in features, encoder, decoder, alignment and everything
else. A window's share of the worker is `wall * slots / windows` (slots = model calls the
worker runs at once, ASR_WORKER_CONCURRENCY); "model time" is CTranslate2's encode, generate
and align (the worker's own timing of each request, contracts.worker.Timing); the non-model
share is what is left of the window's share. The ceiling (bench/direct.py, its own process, run
after the load so the two never compete) puts the same windows through CTranslate2 directly
(asr/direct_pass.py) at batch 1 and 16: one feature pass, one encode, one generate, one align
per batch, nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.clips import SAMPLE_RATE, pcm16, pcm_slice
from bench.latency import Distribution
from bench.scoring import Clip, normalize, wer
from contracts.worker import DecodeOptions, to_form

STAGES = ("features", "encoder", "decoder", "align")
MODEL_STAGES = ("encoder", "decoder", "align")  # CTranslate2's calls: "model time"
RETRY_SEC = 0.05  # after a 503 (queue full): the gateway and NGINX retry too
TIMEOUT_SEC = 600.0


@dataclass(frozen=True)
class Window:
    clip_id: str
    language: str
    path: Path
    offset_sec: float
    duration_sec: float

    def as_job(self) -> dict[str, Any]:
        return {
            "id": f"{self.clip_id}@{self.offset_sec:g}",
            "path": str(self.path),
            "language": self.language,
            "offset_sec": self.offset_sec,
            "duration_sec": self.duration_sec,
        }


def cut_windows(clips: list[Clip], window_sec: float, count: int) -> list[Window]:
    """`count` windows of `window_sec`: cut one after another from every clip at least that
    long, taken round-robin over the clips (so any prefix mixes clips and languages), from the
    start again when the clips run out."""
    per_clip = [
        [
            Window(c.id, c.language, c.path, round(k * window_sec, 3), window_sec)
            for k in range(int(c.duration_s // window_sec))
        ]
        for c in clips
        if c.duration_s >= window_sec
    ]
    pool: list[Window] = []
    for depth in range(max((len(w) for w in per_clip), default=0)):
        pool += [windows[depth] for windows in per_clip if depth < len(windows)]
    if not pool:
        raise ValueError(f"no clip is {window_sec:g} s long")
    return [pool[i % len(pool)] for i in range(count)]


def window_options(language: str, beam_size: int) -> DecodeOptions:
    """What the gateway sends with a final window (api/core/channel.py's options)."""
    return DecodeOptions(language=language, beam_size=beam_size, temperature=0.0)


@dataclass
class Record:
    window: Window
    latency_sec: float = 0.0
    status: int = 0
    rejected: int = 0  # 503s before it was served
    timing: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def window_body(window: Window) -> bytes:
    """The window's raw PCM16."""
    return pcm_slice(pcm16(window.path), window.offset_sec, window.duration_sec)


def window_bodies(windows: list[Window]) -> list[bytes]:
    """Every window's PCM16, each clip decoded once, before any clock starts (decoding costs
    CPU that the worker beside it would lose)."""
    clips = {path: pcm16(path) for path in dict.fromkeys(w.path for w in windows)}
    return [pcm_slice(clips[w.path], w.offset_sec, w.duration_sec) for w in windows]


async def _post(
    client: httpx.AsyncClient,
    url: str,
    window: Window,
    beam_size: int,
    deadline: float,
    body: bytes | None = None,
) -> Record:
    """One window until it is answered (a 503 is retried until the deadline); its latency runs
    from the first attempt."""
    record = Record(window)
    body = window_body(window) if body is None else body
    seconds = len(body) / 2 / SAMPLE_RATE
    form = to_form(window_options(window.language, beam_size), speech_spans=[(0.0, seconds)])
    started = time.perf_counter()
    while True:
        try:
            response = await client.post(
                f"{url}/transcribe", files={"file": ("w.pcm", body)}, data=form
            )
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            return record
        record.latency_sec = time.perf_counter() - started
        record.status = response.status_code
        if response.status_code == 503 and time.monotonic() < deadline:
            record.rejected += 1
            await asyncio.sleep(RETRY_SEC)
            continue
        if response.status_code == 200:
            record.timing = response.json().get("timing", {})
        else:
            record.error = response.text[:200]
        return record


async def drive(
    url: str, windows: list[Window], in_flight: int, max_sec: float, beam_size: int = 5
) -> tuple[list[Record], float]:
    """Each of `in_flight` clients posts the next window as soon as its last one is answered,
    until the windows are done or `max_sec` has passed (no new request after it). Returns the
    records and the wall time from the first request to the last answer."""
    url = url.rstrip("/")
    queue: asyncio.Queue[tuple[Window, bytes]] = asyncio.Queue()
    for window, body in zip(windows, window_bodies(windows), strict=True):
        queue.put_nowait((window, body))
    records: list[Record] = []
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    started = time.perf_counter()
    deadline = time.monotonic() + max_sec

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                window, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            records.append(await _post(client, url, window, beam_size, deadline, body))

    async with httpx.AsyncClient(timeout=TIMEOUT_SEC, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(in_flight)))
    return records, time.perf_counter() - started


def warm(url: str, window: Window, beam_size: int = 5) -> None:
    """One request before the clock starts (a fresh worker's first call is slower)."""

    async def once() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT_SEC) as client:
            record = await _post(client, url.rstrip("/"), window, beam_size, time.monotonic())
        if not record.ok:
            raise RuntimeError(f"the worker did not answer the warm-up: {record.error}")

    asyncio.run(once())


def check_transcript(url: str, clip: Clip, beam_size: int = 5) -> dict[str, Any]:
    """The clip whole, with the windows' options, against its reference word for word (after
    normalisation): a wrong library or a broken CUDA link shows up as wrong text, not as an
    error, and then no figure of the run can be trusted."""
    body = pcm16(clip.path)
    form = to_form(
        window_options(clip.language, beam_size), speech_spans=[(0.0, len(body) / 2 / SAMPLE_RATE)]
    )
    response = httpx.post(
        f"{url.rstrip('/')}/transcribe", files={"file": ("c.pcm", body)}, data=form, timeout=300
    )
    response.raise_for_status()
    text = response.json()["text"]
    return {
        "clip": clip.id,
        "text": text,
        "reference": clip.reference_text,
        "wer": round(wer(clip.reference_text, text), 4),
        "word_for_word": normalize(text) == normalize(clip.reference_text),
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def summarize(
    records: list[Record], wall_sec: float, in_flight: int, slots: int = 1
) -> dict[str, Any]:
    """The profile of one level (pure: tested with recorded records)."""
    ok = [r for r in records if r.ok]
    n = len(ok)
    per_window: dict[str, float | None] = {}
    for stage in STAGES:
        per_window[f"{stage}_ms"] = _mean([float(r.timing.get(f"{stage}_ms", 0.0)) for r in ok])
    model = [sum(float(r.timing.get(f"{s}_ms", 0.0)) for s in MODEL_STAGES) for r in ok]
    per_window["model_ms"] = _mean(model)
    # a window's share of the worker: wall time x model slots / windows
    share_ms = wall_sec * 1000 * slots / n if n else None
    per_window["worker_share_ms"] = round(share_ms, 2) if share_ms else None
    stages_ms = sum(per_window[f"{s}_ms"] or 0.0 for s in STAGES)
    per_window["else_ms"] = round(share_ms - stages_ms, 2) if share_ms else None
    # where "everything else" goes, as the worker reports it (per window, means)
    calls = [
        float(r.timing.get("inference_ms", 0.0)) / max(1, int(r.timing.get("batch_size", 1)))
        for r in ok
    ]
    in_call = [
        c - sum(float(r.timing.get(f"{s}_ms", 0.0)) for s in STAGES)
        for c, r in zip(calls, ok, strict=True)
    ]
    breakdown = {
        "call_ms": _mean(calls),  # its share of its model call
        "call_other_ms": _mean(in_call),  # of which not in the four stages
        "http_ms": _mean([float(r.timing.get("decode_ms", 0.0)) for r in ok]),  # form + audio
        "queue_ms": _mean([float(r.timing.get("queue_ms", 0.0)) for r in ok]),
    }
    sizes = Counter(int(r.timing.get("batch_size", 1)) for r in ok)
    # every window of a batch reports the batch's size: b windows of size b are one batch
    batches = {str(b): round(count / b, 2) for b, count in sorted(sizes.items())}
    mean_batch = sum(b * c for b, c in sizes.items()) / n if n else None
    non_model = 1.0 - (per_window["model_ms"] or 0.0) / share_ms if share_ms else None
    return {
        "in_flight": in_flight,
        "slots": slots,
        "windows": n,
        "failed": len(records) - n,
        "errors": sorted({r.error or str(r.status) for r in records if not r.ok})[:5],
        "rejected_503": sum(r.rejected for r in records),
        "wall_sec": round(wall_sec, 3),
        "windows_per_sec": round(n / wall_sec, 3) if wall_sec > 0 else None,
        "latency": Distribution.of(r.latency_sec for r in ok).as_dict(),
        "batches": batches,
        "mean_batch_size": round(mean_batch, 2) if mean_batch else None,
        "per_window": per_window,
        "breakdown": breakdown,
        "non_model_share": round(non_model, 4) if non_model is not None else None,
    }


def run_level(
    url: str,
    windows: list[Window],
    in_flight: int,
    max_sec: float,
    beam_size: int = 5,
    slots: int = 1,
) -> dict[str, Any]:
    records, wall = asyncio.run(drive(url, windows, in_flight, max_sec, beam_size))
    return summarize(records, wall, in_flight, slots)


def run_worker_load(
    url: str,
    windows: list[Window],
    levels: list[int],
    max_sec: float,
    beam_size: int = 5,
    slots: int = 1,
    ceiling_batches: list[int] | None = None,
    ceiling_env: dict[str, str] | None = None,
    ceiling_threads: int = 0,
    check: Clip | None = None,
) -> dict[str, Any]:
    """The transcript check (when a clip is given; a failed check ends the run: "aborted"),
    every level (requests in flight) with the same windows, then the ceiling."""
    warm(url, windows[0], beam_size)
    out: dict[str, Any] = {
        "worker_url": url,
        "window_sec": windows[0].duration_sec,
        "windows": [w.as_job()["id"] for w in windows],
        "beam_size": beam_size,
        "word_timestamps": True,
        "max_sec": max_sec,
        "levels": [],
    }
    if check is not None:
        out["check"] = check_transcript(url, check, beam_size)
        if not out["check"]["word_for_word"]:
            out["aborted"] = f"{check.id} not transcribed word for word: {out['check']['text']!r}"
            return out
    out["levels"] = [run_level(url, windows, n, max_sec, beam_size, slots) for n in levels]
    if ceiling_batches:
        from bench.direct import run_ceiling

        out["ceiling"] = run_ceiling(
            [w.as_job() for w in windows],
            ceiling_batches,
            beam_size,
            max_sec,
            threads=ceiling_threads,
            env=ceiling_env,
        )
    return out


def text_report(result: dict[str, Any]) -> str:
    """What the section prints: one line per level and per ceiling batch size."""
    lines = [f"worker load: {result['window_sec']:g} s windows, beam {result['beam_size']}, "
             f"word timestamps; {result['worker_url']}"]  # fmt: skip
    if "check" in result:
        check = result["check"]
        lines.append(f"  check: {check['clip']} word for word: {check['word_for_word']}")
    if result.get("aborted"):
        lines.append(f"  ABORTED: {result['aborted']}")
    for level in result["levels"]:
        w = level["per_window"]
        stages = ", ".join(f"{s} {w[f'{s}_ms']}" for s in STAGES)
        lines.append(
            f"  {level['in_flight']:>4} in flight: {level['windows_per_sec']} windows/s, "
            f"latency p50/p95 {level['latency']['p50']}/{level['latency']['p95']} s, "
            f"batches {level['batches']}; per window ms: {stages}, else {w['else_ms']} "
            f"(of {w['worker_share_ms']}); non-model share {level['non_model_share']}"
        )
    for row in (result.get("ceiling") or {}).get("batches", []):
        lines.append(
            f"  ceiling batch {row['batch']}: {row['windows_per_sec']} windows/s "
            f"({row['windows']} windows, {row['wall_sec']} s); per window ms: "
            + ", ".join(f"{s} {row['per_window'][f'{s}_ms']}" for s in STAGES)
        )
    return "\n".join(lines)
