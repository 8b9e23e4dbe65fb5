"""The one normaliser, manifest loader and WER helper used by every test and benchmark.

Normalisation (both sides, always): Unicode NFKC, lower case, punctuation to spaces, collapsed
spaces. Numbers are not mapped between digits and words: compare streamed text with the
whole-file text of the same model and clip when reference styles differ.
"""

from __future__ import annotations

import csv
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jiwer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVAL_DIR = REPO_ROOT.parent / "shared" / "eval"


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    chars = [" " if unicodedata.category(ch).startswith("P") else ch for ch in text]
    return " ".join("".join(chars).split())


def wer(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Word error rate after normalisation; lists are scored as one corpus (pooled errors)."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    hyps = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    if len(refs) != len(hyps):
        raise ValueError("reference and hypothesis lists differ in length")
    pairs = [(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]  # an empty reference has no words to get wrong
    if not pairs:
        return 0.0
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))


def quality(streamed: str, whole_file: str) -> float:
    """The reference table's "quality": 1 - WER of the streamed text against the whole-file text."""
    return 1.0 - wer(whole_file, streamed)


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    language: str
    duration_s: float
    reference_text: str
    source: str
    license: str


def eval_dir() -> Path:
    return Path(os.environ.get("ASR_EVAL_DIR", DEFAULT_EVAL_DIR)).resolve()


def load_manifest(path: Path | str | None = None) -> dict[str, Clip]:
    """Clips of a manifest.tsv in the ../shared/eval format, by id (paths made absolute)."""
    manifest = Path(path) if path else eval_dir() / "manifest.tsv"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"no manifest at {manifest}: set ASR_EVAL_DIR to the folder holding manifest.tsv"
        )
    clips: dict[str, Clip] = {}
    with manifest.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            clips[row["id"]] = Clip(
                id=row["id"],
                path=(manifest.parent / row["path"]).resolve(),
                language=row["language"],
                duration_s=float(row["duration_s"]),
                reference_text=row["reference_text"],
                source=row.get("source", ""),
                license=row.get("license", ""),
            )
    return clips


def tokens(text: str) -> list[str]:
    """The normalised words of `text` (what WER and the latency alignment compare)."""
    return normalize(text).split()


def exact_matches(reference: list[str], hypothesis: list[str]) -> list[tuple[int, int]]:
    """(reference index, hypothesis index) of the words an edit-distance alignment pairs as
    equal (jiwer's alignment; substitutions are not matches). Inputs are normalised tokens."""
    if not reference or not hypothesis:
        return []
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    pairs: list[tuple[int, int]] = []
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                pairs.append((chunk.ref_start_idx + k, chunk.hyp_start_idx + k))
    return pairs
