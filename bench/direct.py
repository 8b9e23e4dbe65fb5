"""faster-whisper called directly, with the worker's options: the baseline for our overhead.

Runs in its own process (`python -m bench.direct < job.json`) so its model, threads and memory
are measured apart from the bench's. The model, device, compute type and thread count are the
worker's (WorkerSettings from the same environment, threads from the job); the decoding options
are those a worker uses for `POST /transcribe` with only language and beam_size given.

job: {"threads": 2, "jobs": [{"id", "path", "language", "beam_size", "offset_sec",
      "duration_sec", "repeat", "task"}]}   (task: "transcribe" (default) or "translate")
out: {"load_sec", "rss_mb", "results": [{"id", "times_sec": [...], "text"}]}
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000


def run_direct(threads: int, jobs: list[dict[str, Any]], timeout_sec: float = 3600) -> dict:
    """Run jobs in a fresh `python -m bench.direct` process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.direct"],
        input=json.dumps({"threads": threads, "jobs": jobs}),
        capture_output=True,
        text=True,
        timeout=timeout_sec,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.direct failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
