"""What the suite promises users about text: one row per promise, and the one check that holds it.

A text check never reads a figure recorded on some machine. It compares what it measured with a
reference computed in the same run, on the same machine, by the same engine: the whole file
through one worker, the same speech sent at 16 kHz, one worker instead of two, an uninterrupted
session, faster-whisper called directly. The two CPU backends of CTranslate2 (MKL on Intel,
oneDNN on AMD) give different text for the same audio; a comparison within the run holds on
both.

The margin of each row is a promise to users ("streamed text is at most 3 points worse than the
whole file"), set from figures measured on both backends. tests/README.md lists every row with
those figures and why the number; `tests/unit/test_promises.py` keeps that table and PROMISES
the same. Every test that compares text calls `hold` with its row.

With ASR_PROMISE_LOG naming a file, every check also appends what it measured there (JSON
lines); `python -m tests.promises LOG...` sums such logs up per row and backend, which is how
the table's figures are collected.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.resources import ct2_cpu_backend
from bench.scoring import normalize

LOG_ENV = "ASR_PROMISE_LOG"


@dataclass(frozen=True)
class Promise:
    """`measured <= reference + allowance`, where the allowance is `points` (a fraction: 0.02
    is two WER points), or `words` words of the text scored against if that is more: on a clip
    of twenty words one word is five points, and no promise can be finer than one word."""

    points: float
    words: int
    says: str

    def allowance(self, scored_words: int) -> float:
        return max(self.points, self.words / max(scored_words, 1))


PROMISES: dict[str, Promise] = {
    "worker-vs-faster-whisper": Promise(
        0.01,
        0,
        "The worker's whole-file text, language detected, is as good as faster-whisper's own "
        "with the language given.",
    ),
    "translation-vs-faster-whisper": Promise(
        0.02,
        1,
        "A translation to English says what faster-whisper's own translation of the clip says.",
    ),
    "file-vs-whole-file": Promise(
        0.03,
        1,
        "Audio sent as a file (cut at pauses into pieces of up to 30 s) or as one Realtime "
        "turn is as good as the worker's whole-file transcription.",
    ),
    "batch-vs-whole-file": Promise(
        0.04,
        1,
        "A live session in batch mode is as good as the whole file.",
    ),
    "stream-vs-whole-file": Promise(
        0.08,
        1,
        "A live session in stream mode is as good as the whole file.",
    ),
    "encoding-vs-16k": Promise(
        0.03,
        1,
        "The same speech sent at another rate or sample format is as good as at 16 kHz PCM16.",
    ),
    "narrowband-vs-16k": Promise(
        0.01,
        1,
        "Telephone audio (8 kHz, mu-law or PCM) loses only what the narrow band loses: it is as "
        "good as the same narrow-band sound sent at 16 kHz.",
    ),
    "resumed-vs-uninterrupted": Promise(
        0.02,
        1,
        "A session that loses its gateway or a worker and resumes is as good as the same "
        "session uninterrupted.",
    ),
    "reconnect-vs-whole-file": Promise(
        0.05,
        1,
        "The page reconnecting after its gateway died keeps the text close to the whole file.",
    ),
    "batched-vs-alone": Promise(
        0.01,
        1,
        "A window's text does not depend on the windows it shares a model call with.",
    ),
    "prefix-vs-whole-window": Promise(
        0.0,
        1,
        "A live window with the words already sent as its prefix returns the rest of what the "
        "window says.",
    ),
    "realtime-vs-stream": Promise(
        0.02,
        1,
        "OpenAI Realtime turns are as good as our own protocol's stream mode on the same audio.",
    ),
    "packed-vs-unpacked": Promise(
        0.02,
        1,
        "Packed windows (ASR_WORKER_PACK) are as good as the same windows unpacked.",
    ),
}


def words_in(text: str | list[str]) -> int:
    """Words of the text scored against, as WER counts them."""
    texts = [text] if isinstance(text, str) else text
    return sum(len(normalize(t).split()) for t in texts)


def hold(
    row: str,
    measured: float,
    reference: float,
    scored_against: str | list[str],
    what: str = "",
) -> None:
    """Assert `measured <= reference + allowance` for the promise `row`. Both WERs are scored
    against the same text, `scored_against` (the human reference, or a text computed in the
    run with `reference` 0)."""
    promise = PROMISES[row]
    words = words_in(scored_against)
    allowed = promise.allowance(words)
    log = os.environ.get(LOG_ENV)
    if log:
        entry = {
            "row": row,
            "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
            "what": what,
            "measured": round(measured, 4),
            "reference": round(reference, 4),
            "words": words,
            "backend": ct2_cpu_backend(),
        }
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
    assert measured <= reference + allowed + 1e-9, (
        f"promise {row!r} broken{f' ({what})' if what else ''}: WER {measured:.2%} against "
        f"{reference:.2%} in the same run, {measured - reference:+.2%}, allowed "
        f"{allowed:+.2%} ({words} words; tests/README.md: {promise.says})"
    )


def summarize(paths: list[str]) -> str:
    """Per row and backend: how many checks, the largest and the median excess (measured minus
    reference), as a markdown table."""
    excess: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            key = (entry["row"], entry["backend"])
            excess[key].append(entry["measured"] - entry["reference"])
    lines = ["| row | backend | checks | largest excess | median excess |", "|---|---|---|---|---|"]
    for (row, backend), values in sorted(excess.items()):
        values.sort()
        median = values[len(values) // 2]
        lines.append(f"| {row} | {backend} | {len(values)} | {max(values):+.2%} | {median:+.2%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1:]))
