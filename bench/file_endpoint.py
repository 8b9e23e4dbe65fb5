"""The file endpoint on a long file: stacks of W workers x T threads (e.g. 1x1, 1x2, 2x1) and
faster-whisper called directly on the same file with the same total threads (our overhead)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.direct import run_direct
from bench.resources import Sampler
from bench.scoring import Clip, wer
from bench.stack import Stack, StackUnavailable, start_stack


def parse_config(text: str) -> tuple[int, int]:
    """'2x1' -> (2 workers, 1 thread each)."""
    workers, _, threads = text.lower().partition("x")
    return int(workers), int(threads or 0)


def post_file(stack: Stack, clip: Clip) -> dict[str, Any]:
    sampler = Sampler(stack.worker_pids + stack.gateway_pids).start()
    started = time.perf_counter()
    with clip.path.open("rb") as fh:
        response = httpx.post(
            f"{stack.gateway_url}/v1/audio/transcriptions",
            files={"file": (clip.path.name, fh)},
            data={"language": clip.language, "response_format": "json"},
            timeout=3600,
        )
    wall = time.perf_counter() - started
    usage = sampler.stop()
    response.raise_for_status()
    text = response.json()["text"]
    return {
        "wall_sec": round(wall, 3),
        "rtf": round(wall / clip.duration_s, 4),
        "wer": round(wer(clip.reference_text, text), 4),
        "services": usage.as_dict(),
    }


def direct_case(clip: Clip, threads: int) -> dict[str, Any]:
    job = {"id": clip.id, "path": str(clip.path), "language": clip.language, "beam_size": 5}
    out = run_direct(threads, [job])
    seconds = out["results"][0]["times_sec"][0]
    return {
        "threads": threads,
        "wall_sec": seconds,
        "rtf": round(seconds / clip.duration_s, 4),
        "wer": round(wer(clip.reference_text, out["results"][0]["text"]), 4),
        "rss_mb": out["rss_mb"],
    }


def run_file_configs(
    clip: Clip, configs: list[str], log_dir: Path, external: Stack | None = None
) -> dict[str, Any]:
    """Each config on a freshly started stack (or the external one, as it is)."""
    cases: list[dict[str, Any]] = []
    if external is not None:
        cases.append({"config": "external", **post_file(external, clip)})
    else:
        for config in configs:
            workers, threads = parse_config(config)
            try:
                with start_stack(workers, threads, log_dir) as stack:
                    cases.append({"config": config, "available": True, **post_file(stack, clip)})
            except StackUnavailable as exc:
                cases.append({"config": config, "available": False, "reason": str(exc)})
    totals = sorted({w * t for w, t in map(parse_config, configs)} if not external else {0})
    direct = {str(t): direct_case(clip, t) for t in totals}
    for case in cases:
        if case.get("available") is False or case["config"] == "external":
            continue
        workers, threads = parse_config(case["config"])
        base = direct.get(str(workers * threads))
        if base:
            case["vs_direct"] = round(case["wall_sec"] / base["wall_sec"] - 1.0, 4)
    return {"clip": clip.id, "audio_sec": clip.duration_s, "cases": cases, "direct": direct}
