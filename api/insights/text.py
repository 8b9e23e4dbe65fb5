"""Words, stop words, keywords and the local extractive summary: plain functions of the text,
deterministic (ties break on first appearance), no network."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

# letters only (numbers and "a.C." carry no topic), inner apostrophes and hyphens kept
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
MIN_KEYWORD_CHARS = 3
SUMMARY_SENTENCES = 3
FALLBACK_LANGUAGES = ("pt", "en")  # before the session's language is known
# the package's long lists carry words a call is about (its English list has "order",
# "problem", "number"): these stay keywords
KEEP = frozenset(
    {"order", "orders", "problem", "problems", "number", "system", "information", "help"}
    | {"valor", "nome", "trabalho", "horas", "tempo", "número"}
)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def words(text: str) -> list[str]:
    return WORD.findall(normalize(text))


@lru_cache(maxsize=16)
def stop_words(language: str | None) -> frozenset[str]:
    """The `stop-words` package's list for the language (shipped in its wheel, read from disk);
    Portuguese and English together when the language is unknown or has no list."""
    from stop_words import StopWordError, get_stop_words

    languages: Iterable[str] = (language,) if language else FALLBACK_LANGUAGES
    found: set[str] = set()
    for code in languages:
        try:
            found.update(get_stop_words(code))
        except StopWordError:
            return stop_words(None)
    # the lists hold "d'" or "don't" forms too: keep what our tokenizer could produce
    return frozenset(w for item in found for w in words(item)) - KEEP


class KeywordCounter:
    """Word counts of a session so far, with the order words first appeared in."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._first: dict[str, int] = {}

    def add(self, text: str) -> None:
        for word in words(text):
            self._first.setdefault(word, len(self._first))
            self.counts[word] += 1

    def top(self, limit: int, language: str | None) -> list[str]:
        stop = stop_words(language)
        candidates = [w for w in self.counts if len(w) >= MIN_KEYWORD_CHARS and w not in stop]
        candidates.sort(key=lambda w: (-self.counts[w], self._first[w]))
        return candidates[:limit]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def summarize(text: str, counts: Counter[str], language: str | None, max_chars: int) -> str:
    """The sentences that carry the session's most frequent content words, in spoken order,
    within `max_chars` (a lone long sentence is cut at a word)."""
    stop = stop_words(language)
    found = sentences(text)
    if not found:
        return ""

    def score(sentence: str) -> float:
        content = [w for w in words(sentence) if w not in stop and len(w) >= MIN_KEYWORD_CHARS]
        norm: float = (len(content) + 1) ** 0.5
        return sum(counts[w] for w in content) / norm

    scores = [score(s) for s in found]
    ranked = sorted(range(len(found)), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    used = 0
    for index in ranked:
        # small talk ("Bom dia.") never fills the space left by the topic's sentences
        if len(chosen) == SUMMARY_SENTENCES or (chosen and scores[index] < scores[ranked[0]] / 2):
            break
        length = len(found[index]) + (1 if chosen else 0)
        if used + length <= max_chars:
            chosen.append(index)
            used += length
    if not chosen:
        return clip(found[ranked[0]], max_chars)
    return " ".join(found[i] for i in sorted(chosen))


def clip(text: str, max_chars: int) -> str:
    """`text` within max_chars, cut at a word boundary with an ellipsis."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"
