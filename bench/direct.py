"""faster-whisper called directly, with the worker's options: the baseline for our overhead.

Runs in its own process (`python -m bench.direct < job.json`) so its model, threads and memory
are measured apart from the bench's. The model, device, compute type and thread count are the
worker's (WorkerSettings from the same environment, threads from the job); the decoding options
are those a worker uses for `POST /transcribe` with only language and beam_size given.

job: {"threads": 2, "jobs": [{"id", "path", "language", "beam_size", "offset_sec",
      "duration_sec", "repeat", "task"}]}   (task: "transcribe" (default) or "translate")
out: {"load_sec", "rss_mb", "results": [{"id", "times_sec": [...], "text"}]}

The ceiling (`run_ceiling`, bench/worker_load.py's): the same windows through CTranslate2
directly, the worker's batched model work alone (asr/direct_pass.py: one feature pass, one
`encode`, one `generate`, one `align` per batch of one language) at each batch size.

job: {"threads": 2, "ceiling": {"windows": [{"id", "path", "language", "offset_sec",
      "duration_sec"}], "batches": [1, 16], "beam_size": 5, "max_sec": 60}}
out: {"load_sec", "device", "compute_type", "batches": [{"batch", "windows", "wall_sec",
      "windows_per_sec", "per_window": {"features_ms", ...}, "texts": {id: text}}]}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

from asr.features import BLAS_ENV

SAMPLE_RATE = 16_000


def run_direct(
    threads: int,
    jobs: list[dict[str, Any]],
    timeout_sec: float = 3600,
    ceiling: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run jobs (or the ceiling) in a fresh `python -m bench.direct` process; its JSON answer.
    `env`: worker settings (ASR_WORKER_*) on top of this process's environment."""
    spec: dict[str, Any] = {"threads": threads, "jobs": jobs}
    if ceiling is not None:
        spec["ceiling"] = ceiling
    done = subprocess.run(
        [sys.executable, "-m", "bench.direct"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout_sec,
        check=False,
        env={**BLAS_ENV, **os.environ, **(env or {})},  # NumPy's BLAS as in the worker
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.direct failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return cast(dict[str, Any], json.loads(done.stdout.strip().splitlines()[-1]))


def run_ceiling(
    windows: list[dict[str, Any]],
    batches: list[int],
    beam_size: int,
    max_sec: float,
    threads: int = 0,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The CTranslate2 ceiling for `windows` at each batch size (bounded by max_sec each)."""
    spec = {"windows": windows, "batches": batches, "beam_size": beam_size, "max_sec": max_sec}
    timeout = 600 + 2 * max_sec * len(batches)
    return run_direct(threads, [], timeout_sec=timeout, ceiling=spec, env=env)


def _ceiling(model: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each batch size in turn: windows grouped by language (a batch shares its prompt, as the
    worker's do), features -> encode -> generate -> align per batch, timed by stage."""
    from asr.direct_pass import DirectPass, plan_pass
    from asr.stage_clock import STAGES, StageClock, timed_model
    from bench.clips import pcm16, pcm_slice
    from contracts.audio import pcm16_to_float
    from contracts.worker import DecodeOptions

    clock = StageClock()
    timed_model(model, clock)
    direct = DirectPass(model, clock)
    windows = spec["windows"]
    clips = {path: pcm16(Path(path)) for path in dict.fromkeys(w["path"] for w in windows)}
    audio = {
        w["id"]: pcm16_to_float(pcm_slice(clips[w["path"]], w["offset_sec"], w["duration_sec"]))
        for w in windows
    }
    out = []
    for batch in spec["batches"]:
        by_language: dict[str, list[dict[str, Any]]] = {}
        for w in windows:
            by_language.setdefault(w["language"], []).append(w)
        chunks = [
            group[i : i + batch]
            for group in by_language.values()
            for i in range(0, len(group), batch)
        ]
        clock.reset()
        done, texts, wall = 0, {}, 0.0
        for chunk in chunks:
            if wall > spec["max_sec"]:
                break
            language = chunk[0]["language"]
            options = DecodeOptions(
                language=language, beam_size=int(spec["beam_size"]), temperature=0.0
            )
            started = time.perf_counter()
            feats, frames = direct.features([audio[w["id"]] for w in chunk])
            plan = plan_pass(frames, pack=False, gap=0, max_per_input=1)
            encoded = direct.encode(direct.inputs(plan, feats))
            results = direct.generate(encoded, direct.prompts(plan, options), options)
            tokenizer = direct.tokenizer(language)
            tokens = [[t for t in r.sequences_ids[0] if t < tokenizer.eot] for r in results]
            ends = [plan.input_end(k) for k in range(plan.inputs)]
            direct.align(encoded, language, tokens, ends)
            wall += time.perf_counter() - started
            done += len(chunk)
            for w, t in zip(chunk, tokens, strict=True):
                texts[w["id"]] = tokenizer.decode(t).strip()
        totals = clock.read()
        out.append(
            {
                "batch": batch,
                "windows": done,
                "wall_sec": round(wall, 3),
                "windows_per_sec": round(done / wall, 3) if wall else None,
                "per_window": {
                    f"{s}_ms": round(totals[s] * 1000 / max(1, done), 2) for s in STAGES
                },
                "texts": texts,
            }
        )
    return out


def _main() -> None:
    import numpy as np
    import psutil
    from faster_whisper import WhisperModel

    from asr.audio import decode_file
    from asr.config import WorkerSettings
    from asr.model import LOW_LOGPROB, NO_SPEECH_PROB

    spec = json.loads(sys.stdin.read())
    settings = WorkerSettings(cpu_threads=int(spec["threads"]))
    started = time.perf_counter()
    model = WhisperModel(
        settings.model_path,
        device=settings.resolved_device,
        device_index=settings.device_index,
        compute_type=settings.resolved_compute_type,
        cpu_threads=settings.resolved_cpu_threads,
        num_workers=1,
        download_root=str(settings.models_dir),
    )
    load_sec = time.perf_counter() - started
    warm = np.zeros(SAMPLE_RATE, dtype=np.float32)
    for _ in model.transcribe(warm, language="pt", beam_size=1, max_new_tokens=4)[0]:
        pass
    if "ceiling" in spec:
        batches = _ceiling(model, spec["ceiling"])
        print(
            json.dumps(
                {
                    "load_sec": round(load_sec, 3),
                    "device": settings.resolved_device,
                    "compute_type": settings.resolved_compute_type,
                    "threads": settings.resolved_cpu_threads,
                    "batches": batches,
                }
            )
        )
        return
    decoded: dict[str, np.ndarray] = {}
    results = []
    for job in spec["jobs"]:
        path = job["path"]
        if path not in decoded:
            decoded[path] = decode_file(Path(path).read_bytes())
        audio = decoded[path]
        first = int(job.get("offset_sec", 0.0) * SAMPLE_RATE)
        length = job.get("duration_sec")
        audio = audio[first : None if length is None else first + int(length * SAMPLE_RATE)]
        times, text = [], ""
        for _ in range(int(job.get("repeat", 1))):
            t = time.perf_counter()
            segments, _info = model.transcribe(
                audio,
                language=job["language"],
                beam_size=int(job.get("beam_size", 5)),
                best_of=1,
                temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
                word_timestamps=True,
                vad_filter=False,
                task=job.get("task", "transcribe"),
                no_speech_threshold=NO_SPEECH_PROB,
                log_prob_threshold=LOW_LOGPROB,
            )
            text = " ".join(s.text.strip() for s in segments).strip()
            times.append(round(time.perf_counter() - t, 4))
        results.append({"id": job["id"], "times_sec": times, "text": text})
    rss = psutil.Process().memory_info().rss / 2**20
    print(json.dumps({"load_sec": round(load_sec, 3), "rss_mb": round(rss, 1), "results": results}))


if __name__ == "__main__":
    _main()
