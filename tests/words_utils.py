"""Checks on transcribed words that several tests share."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

# Whisper's word times come from cross-attention on 20 ms encoder frames: two code paths that
# agree on the words may still place a boundary one frame apart (batched and alone, the
# CPU backends' rounding).
WORD_TIME_TOLERANCE_SEC = 0.02
# the same word again within this much is the same word sent twice, not said twice
REPEAT_WINDOW_SEC = 0.3


def transcript_words(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for e in events if e["event"] == "transcript" for w in e["words"]]


def assert_in_order_once(words: Sequence[dict[str, Any]]) -> None:
    """Word starts never go back, and no word comes twice (the same word again within 0.3 s)."""
    starts = [w["start"] for w in words]
    assert starts == sorted(starts), "words out of order"
    for a, b in itertools.pairwise(words):
        assert not (a["word"] == b["word"] and abs(a["start"] - b["start"]) < REPEAT_WINDOW_SEC), (
            a,
            b,
        )


def assert_same_words(
    got: Sequence[tuple[str, float, float]],
    expected: Sequence[tuple[str, float, float]],
    tolerance_sec: float = WORD_TIME_TOLERANCE_SEC,
) -> None:
    """Two code paths gave the same words in the same order, their start and end times within
    `tolerance_sec` (never compared exactly: the paths round differently)."""
    assert [w for w, _, _ in got] == [w for w, _, _ in expected]
    for (word, start, end), (_, start_e, end_e) in zip(got, expected, strict=True):
        assert abs(start - start_e) <= tolerance_sec + 1e-9, (word, start, start_e)
        assert abs(end - end_e) <= tolerance_sec + 1e-9, (word, end, end_e)
