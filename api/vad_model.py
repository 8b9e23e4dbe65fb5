"""The gateway's one VAD: Silero (the v6 ONNX model faster-whisper ships), run through
onnxruntime directly, so the gateway never imports faster-whisper or CTranslate2.

The model file comes from `ASR_VAD_MODEL_PATH`, else from the installed faster-whisper
distribution's files, found through its package metadata without importing it (the gateway
image extracts it from the faster-whisper wheel at build time instead: deploy/). Its SHA-256 is
checked, so the gateway and the worker's own VAD always run the same model.

Silero is recurrent: it scores 32 ms chunks (512 samples, each with the 64 samples before it)
in order, with its state (h, c) carried from one call to the next; then the probabilities equal
those of an offline pass over the same audio. Scoring costs ~0.15 ms per chunk.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from api.core.speech import CHUNK

CONTEXT = 64
MODEL_FILE = "silero_vad_v6.onnx"
MODEL_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
OFFLINE_BATCH = 10_000  # chunks per model call when scoring a whole file


class VadModelMissing(RuntimeError):
    pass


def find_model(configured: Path | None = None) -> Path:
    if configured is not None:
        path = configured
    else:
        try:
            files = metadata.distribution("faster-whisper").files or []
        except metadata.PackageNotFoundError:
            files = []
        found = [f for f in files if f.name == MODEL_FILE]
        if not found:
            raise VadModelMissing(
                f"no Silero VAD model: set ASR_VAD_MODEL_PATH to {MODEL_FILE} (the gateway "
                "image carries it; faster-whisper's wheel ships it in faster_whisper/assets/)"
            )
        path = Path(str(found[0].locate()))
    if not path.is_file():
        raise VadModelMissing(f"ASR_VAD_MODEL_PATH {path} is not a file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise VadModelMissing(f"{path} is not the Silero v6 model expected (sha256 {digest})")
    return path


@lru_cache(maxsize=4)
def load_model(path: Path) -> SileroModel:
    return SileroModel(path)


class SileroModel:
    """One ONNX session shared by every channel (onnxruntime sessions are thread-safe)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=options
        )

    def run(
        self, batch: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities of a batch of (context + chunk) rows, and the state after it."""
        out, h, c = self._session.run(None, {"input": batch, "h": h, "c": c})
        return np.asarray(out).reshape(-1), h, c

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Every whole chunk of float32 audio scored from a fresh state (files)."""
        stream = SileroStream(self)
        count = audio.size // CHUNK
        out = [
            stream.score(audio[i * CHUNK : min(count, i + OFFLINE_BATCH) * CHUNK])
            for i in range(0, count, OFFLINE_BATCH)
        ]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class SileroStream:
    """One channel's recurrent state: consecutive whole chunks in, one probability each out."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)

    def score(self, audio: np.ndarray) -> np.ndarray:
        """`audio`: float32, a whole number of chunks following the last ones scored."""
        count = audio.size // CHUNK
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        chunks = audio[: count * CHUNK].reshape(count, CHUNK)
        contexts = np.concatenate((self._context[None, :], chunks[:-1, -CONTEXT:]))
        self._context = chunks[-1, -CONTEXT:].copy()
        batch = np.concatenate((contexts, chunks), axis=1)
        probs, self._h, self._c = self._model.run(batch, self._h, self._c)
        return probs
