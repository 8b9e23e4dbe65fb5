"""Guards against whisper's loops, shared by the worker and the gateway."""

from __future__ import annotations

from collections.abc import Sequence


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
