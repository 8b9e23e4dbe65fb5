"""What the worker adds to faster-whisper (issue 3's targets): the same WER as a direct call
with the same options (within 0.5 point), at most 5% more time per request, the per-call
latency of a 2 s window, the real-time factor of a 60 s clip, and the worker's resident memory
after a 5-minute file (<= 500 MB).

The worker and the direct call never run at the same time: each is timed on an idle machine.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from bench.clips import pcm16, pcm_slice
from bench.direct import run_direct
from bench.latency import Distribution
from bench.resources import Sampler, rss_bytes
from bench.scoring import Clip, wer

WINDOW_SEC = 2.0
RTF_SEC = 60.0
WER_MARGIN = 0.005
TIME_MARGIN = 0.05
RSS_LIMIT_MB = 500.0


def post_worker(
    worker_url: str, clip: Clip, offset_sec: float = 0.0, duration_sec: float | None = None
) -> tuple[float, str]:
    """Wall seconds and text of one `POST /transcribe` (raw PCM of the slice, language given)."""
    body = pcm_slice(pcm16(clip.path), offset_sec, duration_sec)
    started = time.perf_counter()
    response = httpx.post(
        f"{worker_url}/transcribe",
        files={"file": ("clip.pcm", body)},
        data={"format": "pcm_s16le", "language": clip.language, "beam_size": "5"},
        timeout=1800,
    )
    wall = time.perf_counter() - started
    response.raise_for_status()
    return wall, response.json()["text"]


def _job(
    clip: Clip, offset: float = 0.0, duration: float | None = None, repeat: int = 1
) -> dict[str, Any]:
    return {
        "id": clip.id,
        "path": str(clip.path),
        "language": clip.language,
        "beam_size": 5,
        "offset_sec": offset,
        "duration_sec": duration,
        "repeat": repeat,
    }


def run_overhead(
    worker_url: str,
    worker_pids: list[int],
    threads: int,
    clips: list[Clip],
    window_clip: Clip,
    rtf_clip: Clip | None,
    memory_clip: Clip | None,
    repeat: int = 3,
    window_calls: int = 20,
) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": threads}
    # same clips, worker then direct; the median of `repeat` runs each
    worker_times, worker_texts = [], []
    for clip in clips:
        runs = [post_worker(worker_url, clip) for _ in range(repeat)]
        worker_times.append(statistics.median(t for t, _ in runs))
        worker_texts.append(runs[-1][1])
    jobs = [_job(c, repeat=repeat) for c in clips]
    window = _job(window_clip, 0.0, WINDOW_SEC, window_calls)
    window["id"] = "window"
    jobs.append(window)
    if rtf_clip is not None:
        rtf_job = _job(rtf_clip, 0.0, RTF_SEC, 1)
        rtf_job["id"] = "rtf"
        jobs.append(rtf_job)
    direct = {r["id"]: r for r in run_direct(threads, jobs)["results"]}
    direct_times = [statistics.median(direct[c.id]["times_sec"]) for c in clips]
    refs = [c.reference_text for c in clips]
    worker_wer = wer(refs, worker_texts)
    direct_wer = wer(refs, [direct[c.id]["text"] for c in clips])
    ratio = sum(worker_times) / sum(direct_times) - 1.0
    out["wer"] = {
        "clips": [c.id for c in clips],
        "worker": round(worker_wer, 4),
        "direct": round(direct_wer, 4),
        "difference": round(worker_wer - direct_wer, 4),
        "within_target": abs(worker_wer - direct_wer) <= WER_MARGIN,
    }
    out["time"] = {
        "worker_sec": round(sum(worker_times), 3),
        "direct_sec": round(sum(direct_times), 3),
        "extra": round(ratio, 4),
        "within_target": ratio <= TIME_MARGIN,
        "per_clip": {
            c.id: {"worker": round(w, 4), "direct": round(d, 4)}
            for c, w, d in zip(clips, worker_times, direct_times, strict=True)
        },
    }
    window_worker = [
        post_worker(worker_url, window_clip, 0.0, WINDOW_SEC)[0] for _ in range(window_calls)
    ]
    out["window_2s"] = {
        "clip": window_clip.id,
        "worker": Distribution.of(window_worker).as_dict(),
        "direct": Distribution.of(direct["window"]["times_sec"]).as_dict(),
    }
    if rtf_clip is not None:
        wall, _ = post_worker(worker_url, rtf_clip, 0.0, RTF_SEC)
        seconds = min(RTF_SEC, rtf_clip.duration_s)
        out["rtf_60s"] = {
            "clip": rtf_clip.id,
            "worker": round(wall / seconds, 4),
            "direct": round(direct["rtf"]["times_sec"][0] / seconds, 4),
        }
    if memory_clip is not None and worker_pids:
        out["memory"] = memory_after_long_file(worker_url, worker_pids, memory_clip)
    return out


def memory_after_long_file(worker_url: str, pids: list[int], clip: Clip) -> dict[str, Any]:
    before = rss_bytes(pids)
    sampler = Sampler(pids, interval_sec=0.5).start()
    wall, _ = post_worker(worker_url, clip)
    usage = sampler.stop()
    after = rss_bytes(pids)
    return {
        "clip": clip.id,
        "audio_sec": clip.duration_s,
        "wall_sec": round(wall, 3),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_peak_mb": round(usage.rss_max / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "within_target": after / 2**20 <= RSS_LIMIT_MB,
    }
