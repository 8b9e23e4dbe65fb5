"""Every text-comparing bound of the suite, from one recorded baseline (tests/baselines.json).

A test measures a WER and calls `check_wer(name, measured, words)`. The bound is the worst WER
of the recorded runs plus a margin of one word of the clip, never less than one point: tight
enough that a regression fails, loose enough for the spread the runs showed. The baseline is
recorded by running the tests themselves several times on this machine:

    python -m tests.record_baselines --runs 5        # rewrites tests/baselines.json

While recording (ASR_BASELINE_RECORD names a file) `check_wer` appends what it measured
there and asserts nothing; otherwise a name missing from the baseline fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BASELINES = Path(__file__).resolve().parent / "baselines.json"
RECORD_ENV = "ASR_BASELINE_RECORD"
MIN_MARGIN = 0.01  # one WER point


def words_in(text: str | list[str]) -> int:
    """Reference words, as WER counts them."""
    from bench.scoring import normalize

    texts = [text] if isinstance(text, str) else text
    return sum(len(normalize(t).split()) for t in texts)


def load() -> dict[str, Any]:
    return json.loads(BASELINES.read_text(encoding="utf-8")) if BASELINES.exists() else {}


def bound(entry: dict[str, Any]) -> float:
    return round(entry["max"] + max(1 / entry["words"], MIN_MARGIN), 4)


def check_wer(name: str, measured: float, words: int) -> None:
    """`words`: reference words of the clip (the margin is one of them)."""
    record = os.environ.get(RECORD_ENV)
    if record:
        with open(record, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, "wer": measured, "words": words}) + "\n")
        return
    baselines = load()
    entry = baselines.get("entries", {}).get(name)
    assert entry is not None, f"no baseline for {name!r}: python -m tests.record_baselines"
    limit = bound(entry)
    assert measured <= limit, (
        f"{name}: WER {measured:.2%} over its bound {limit:.2%} (baseline median "
        f"{entry['median']:.2%}, {entry['min']:.2%}-{entry['max']:.2%} over {len(entry['runs'])} "
        f"runs recorded {entry.get('recorded', baselines['recorded'])}, margin one word of {words})"
    )
