"""Fill the shared model cache once, before the workers start (compose's `model-fetch`).

Thirty workers starting at once must not race to download the same model: this one-shot job
downloads ASR_WORKER_MODEL into ASR_WORKER_MODELS_DIR (the layout WhisperModel's download_root
reads), and the workers then run with HF_HUB_OFFLINE=1. Nothing to do for the embedded model or
a model directory. Safe to run again: a complete cache is not downloaded twice.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from asr.config import WorkerSettings


def main() -> int:
    settings = WorkerSettings()
    if settings.is_embedded or Path(settings.model).is_dir():
        print(f"model {settings.model!r} needs no download", flush=True)
        return 0
    from faster_whisper import download_model

    started = time.perf_counter()
    path = download_model(settings.model, cache_dir=str(settings.models_dir))
    seconds = time.perf_counter() - started
    print(f"model {settings.model!r} ready in {path} ({seconds:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
