"""The long-form material and the long-form section's pure parts (bench/longform.py,
bench/longform_section.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.longform import cut_after, level, longform_clips, reference_prefix
from bench.longform_section import rounds, summary


def test_an_excerpt_ends_in_the_first_real_pause_after_its_length() -> None:
    words = [("a", 118.0, 119.5), ("b", 119.6, 120.4), ("c", 120.5, 121.0), ("d", 121.6, 122.0)]
    # 0.1 s between b and c is no pause; 0.6 s between c and d is
    assert cut_after(words, 120.0) == pytest.approx(121.3)
    with pytest.raises(ValueError):
        cut_after(words[:3], 120.0)


def test_an_excerpt_reference_is_the_reference_up_to_what_was_spoken() -> None:
    reference = "Os oceanos cobrem mais de setenta por cento. A vida marinha é rica."
    # the transcript mangles a word and stops after "cento"
    assert reference_prefix(reference, "os oceanos cobrem mais de 70 por cento") == (
        "Os oceanos cobrem mais de setenta por cento."
    )
    assert reference_prefix(reference, "") == ""


def test_levelling_brings_quiet_and_loud_speech_to_one_level() -> None:
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    quiet, loud = level(0.004 * tone), level(0.5 * tone)
    assert np.sqrt(np.mean(quiet**2)) == pytest.approx(np.sqrt(np.mean(loud**2)), rel=0.01)
    assert 20 * np.log10(np.sqrt(np.mean(loud**2))) == pytest.approx(-26.0, abs=0.1)


def test_sessions_cover_every_clip_in_groups() -> None:
    assert rounds(4, 1) == [[0], [1], [2], [3]]
    assert rounds(4, 2) == [[0, 1], [2, 3]]
    assert rounds(4, 3) == [[0, 1, 2]]
    assert rounds(4, 4) == [[0, 1, 2, 3]]


def test_the_summary_is_the_median_and_spread_of_the_runs() -> None:
    runs = [
        {"wer": w, "whole_file_wer": 0.1, "final_p50": p, "final_p95": 2.0, "first_p50": None,
         "first_p95": None, "failed_sessions": 0, "errors": 0, "lost_sec": 0.0,
         "behind_transcripts": b, "matched_min": 0.9}
        for w, p, b in ((0.12, 1.5, 0), (0.10, 1.7, 2), (0.11, 1.6, 0))
    ]  # fmt: skip
    out = summary(runs)
    assert out["wer"] == {"median": 0.11, "min": 0.10, "max": 0.12}
    assert out["final_p50"]["median"] == 1.6 and out["first_p50"]["median"] is None
    assert out["behind_transcripts"] == 2


def test_the_material_is_built_from_the_dev_set(manifest) -> None:
    """Word times stand in for the whole-file transcription: two words a second."""

    def word_timer(clip):
        words = clip.reference_text.split()
        return [(w, i * 0.5, i * 0.5 + 0.15) for i, w in enumerate(words)]

    clips = {c.id: c for c in longform_clips(manifest, word_timer)}
    assert set(clips) == {
        "pt-longform-dev",
        "cuttledoc-pt-tts-adam-120s",
        "cuttledoc-pt-tts-raquel-120s",
        "en-longform",
    }
    excerpt = clips["cuttledoc-pt-tts-adam-120s"]
    assert 120.0 <= excerpt.duration_sec <= 121.0
    spoken = manifest["cuttledoc-pt-tts-adam"].reference_text.split()
    assert excerpt.reference.split() == spoken[: len(excerpt.reference.split())]
    assert 230 <= len(excerpt.reference.split()) <= 245  # 2 words a second, up to 120.4 s
    english = clips["en-longform"]
    assert english.duration_sec == pytest.approx(
        sum(c.duration_s for c in manifest.values() if c.language == "en"), abs=0.01
    )
