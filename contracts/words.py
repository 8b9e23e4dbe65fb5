"""Words: how two are compared, where whisper starts looping, and moving word times from the
audio a request sent onto a session's or a file's timeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contracts.worker import Segment, Word


def word_key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def repeated_tail_start(words: Sequence[str], min_run: int = 5, window: int = 40) -> int:
    """Where a looping tail starts: whisper sometimes repeats what it just heard at the end of
    its input ("... fala Brasil para um teste dos modelos ... fala Brasil para"). The first run
    of `min_run` or more words (within the last `window`) that already occurred earlier in the
    same hypothesis is cut; returns len(words) when there is none."""
    keys = [word_key(w) for w in words]
    n = len(keys)
    for start in range(max(1, n - window), n - min_run + 1):
        run = keys[start : start + min_run]
        if not all(run):
            continue
        for earlier in range(0, start - min_run + 1):
            if keys[earlier : earlier + min_run] == run:
                return start
    return n


def kept_before_loop(prefix: str | None, words: Sequence[str]) -> int:
    """How many of `words` (what the decoder said after a forced `prefix`) come before a looping
    tail, the prefix counted as said: a decoder forced through "eu quero uma" may go on with
    "coxinha de frango. Eu quero uma coxinha de frango", which is a loop only with the prefix."""
    said = (prefix or "").split()
    return max(0, repeated_tail_start([*said, *words]) - len(said))


def same_word(a: str, b: str) -> bool:
    """The same word, ignoring case and punctuation (never true for a bare punctuation mark)."""
    key = word_key(a)
    return key != "" and key == word_key(b)


def shift_words(words: Iterable[Word], offset: float) -> list[Word]:
    """The words `offset` seconds later (empty words dropped), times rounded to milliseconds."""
    return [
        Word(
            word=w.word,
            start=round(offset + w.start, 3),
            end=round(offset + w.end, 3),
            probability=w.probability,
        )
        for w in words
        if w.word.strip()
    ]


def shift_segment(segment: Segment, offset: float, new_id: int) -> Segment:
    return segment.model_copy(
        update={
            "id": new_id,
            "start": round(segment.start + offset, 3),
            "end": round(segment.end + offset, 3),
            "words": shift_words(segment.words, offset),
        }
    )
