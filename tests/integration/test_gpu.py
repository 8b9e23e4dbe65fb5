"""The production path on an NVIDIA GPU (int8_float16). Skipped where no GPU is visible."""

from __future__ import annotations

import httpx
import pytest

from bench.scoring import wer
from launcher.processes import free_port, worker_process
from tests.gpu import cuda_devices


@pytest.mark.gpu
@pytest.mark.skipif(cuda_devices() == 0, reason="no CUDA device visible")
def test_worker_on_gpu_uses_int8_float16(manifest, log_dir) -> None:
    port = free_port()
    proc = worker_process(port, env={"ASR_WORKER_DEVICE": "auto"}, log_dir=log_dir).start()
    try:
        proc.wait_ready(timeout=300)
        ready = httpx.get(f"{proc.url}/ready").json()
        assert ready["device"] == "cuda" and ready["compute_type"] == "int8_float16"
        clip = manifest["jfk"]
        body = httpx.post(
            f"{proc.url}/transcribe", files={"file": clip.path.open("rb")}, timeout=120
        ).json()
        assert wer(clip.reference_text, body["text"]) <= 0.05
        metrics = httpx.get(f"{proc.url}/metrics").text
        assert "nvidia_gpu_utilization" in metrics
    finally:
        proc.stop()
