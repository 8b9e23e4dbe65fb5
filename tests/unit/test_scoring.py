"""The shared normaliser, manifest loader and WER helper."""

from __future__ import annotations

import pytest

from bench.scoring import load_manifest, normalize, quality, wer


def test_normalize() -> None:
    assert normalize("Mr. Quilter, “olá”…  Acredita-se!") == "mr quilter olá acredita se"
    assert normalize("ＡＢＣ") == "abc"  # NFKC
    assert normalize("Ação É") == "ação é"


def test_wer_pools_a_corpus() -> None:
    assert wer("a b c d", "a x c") == pytest.approx(0.5)
    assert wer(["a b", "c d"], ["a b", "c"]) == pytest.approx(0.25)
    assert wer("Hello, World!", "hello world") == 0.0
    assert quality("a b c d", "a b c d") == 1.0


def test_manifest(manifest) -> None:
    assert len(manifest) == 18
    clip = manifest["jfk"]
    assert clip.language == "en" and clip.path.is_file() and clip.duration_s == 11.0
    with pytest.raises(FileNotFoundError, match="ASR_EVAL_DIR"):
        load_manifest("/nonexistent/manifest.tsv")
