"""Worker settings, language lists and the embedded model's integrity check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from asr.config import WorkerSettings
from asr.embedded_model import DEFAULT_MODEL_DIR, ModelIntegrityError, verify
from contracts.languages import parse_language_list


def test_compute_type_follows_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerSettings(device="cpu").resolved_compute_type == "int8"
    assert WorkerSettings(device="cuda").resolved_compute_type == "int8_float16"
    assert WorkerSettings(device="cuda", compute_type="float16").resolved_compute_type == "float16"
    assert WorkerSettings(device="auto").resolved_device == "cpu"  # no GPU here


def test_shared_language_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_LANGUAGES", "en, pt")
    assert WorkerSettings().languages == ["en", "pt"]
    monkeypatch.setenv("ASR_WORKER_PORT", "8123")
    assert WorkerSettings().port == 8123
    monkeypatch.setenv("ASR_LANGUAGES", "pt,klingon")
    with pytest.raises(ValidationError, match="klingon"):
        WorkerSettings()


def test_language_list_parsing() -> None:
    assert parse_language_list("PT,en,pt") == ["pt", "en"]
    assert parse_language_list(["es"]) == ["es"]
    with pytest.raises(ValueError):
        parse_language_list("")


def test_embedded_model_refuses_altered_files(tmp_path: Path) -> None:
    verify(DEFAULT_MODEL_DIR)  # the assembled model is intact
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(DEFAULT_MODEL_DIR / name, copy / name)
    (copy / "model.bin").symlink_to(DEFAULT_MODEL_DIR / "model.bin")
    verify(copy)
    (copy / "config.json").write_text(
        (DEFAULT_MODEL_DIR / "config.json").read_text().replace("5", "6")
    )
    with pytest.raises(ModelIntegrityError, match="SHA-256 mismatch"):
        verify(copy)
    (copy / "model.bin").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        verify(copy)
