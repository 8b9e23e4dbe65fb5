"""The running gateway never loads the worker or the model: after a streamed session and a
file transcription through it, it has imported no faster-whisper, CTranslate2 or tokenizers
module and has no CTranslate2 library mapped. Its one model is the Silero VAD, in
onnxruntime; files are decoded by PyAV."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from launcher.processes import free_port, gateway_process
from tests.audio_utils import read_wav, to_pcm16
from tests.ws_utils import run_session, text_of

FORBIDDEN = ("faster_whisper", "ctranslate2", "tokenizers", "asr")
IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S.*)$")


def imported_modules(log: str) -> set[str]:
    """Module names from PYTHONPROFILEIMPORTTIME's lines (every import, lazy ones too)."""
    return {m.group(1).strip() for line in log.splitlines() if (m := IMPORT_LINE.match(line))}


def test_gateway_imports_no_worker_and_maps_no_ctranslate2(worker, log_dir, manifest) -> None:
    # an environment variable, not -X importtime: it survives the gateway's re-exec
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    proc = gateway_process(
        free_port(), worker.url, env=env, log_dir=log_dir, name="gateway-imports"
    )
    proc.start().wait_ready(timeout=60)
    try:
        audio = to_pcm16(read_wav(manifest["ufpalign-coxinha"].path))
        url = proc.url.replace("http", "ws") + "/ws/transcribe"
        events = asyncio.run(run_session(url, audio, {"language": "pt"}))
        assert "coxinha" in text_of(events).lower()
        clip = manifest["jfk"]
        response = httpx.post(
            f"{proc.url}/v1/audio/transcriptions",
            files={"file": ("jfk.wav", clip.path.read_bytes())},
            timeout=120,
        )
        assert response.status_code == 200 and "country" in response.json()["text"]
        assert proc.proc is not None
        maps = Path(f"/proc/{proc.proc.pid}/maps").read_text()
    finally:
        proc.stop()
    assert "ctranslate2" not in maps.lower()
    assert "onnxruntime" in maps  # the VAD ran in this process
    modules = imported_modules(proc.log_text())
    assert "api.main" in modules and "onnxruntime" in modules and "av" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert loaded == [], loaded
