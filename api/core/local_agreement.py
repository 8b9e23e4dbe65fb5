"""LocalAgreement-2 (after ufal/whisper_streaming): commit the words two consecutive
hypotheses of the same growing audio agree on. Committed words are never taken back."""

from __future__ import annotations

from contracts.words import word_key
from contracts.worker import Word


class HypothesisBuffer:
    def __init__(self) -> None:
        self.committed_end = 0.0  # seconds: end of the last committed word
        self._committed_tail: list[str] = []  # keys of the last committed words
        self._previous: list[Word] = []
        self._current: list[Word] = []

    def insert(self, words: list[Word], after_committed: bool = False) -> None:
        """A new hypothesis (absolute times): keep what lies after the committed words.
        `after_committed`: it holds only such words (the decoder was forced through the
        committed ones)."""
        if after_committed:
            fresh = [w for w in words if word_key(w.word)]
            self._current = fresh[self._repeats_committed(fresh) :]
            return
        fresh = [w for w in words if w.start > self.committed_end - 0.1 and word_key(w.word)]
        # the new hypothesis may start by repeating the last committed words: drop them
        for n in range(min(5, len(self._committed_tail), len(fresh)), 0, -1):
            if [word_key(w.word) for w in fresh[:n]] == self._committed_tail[-n:]:
                fresh = fresh[n:]
                break
        self._current = fresh

    def flush(self, settled_before: float | None = None) -> list[Word]:
        """Commit the longest common prefix of the last two hypotheses, and beyond it the words
        that end before `settled_before` (heard with enough audio after them to be sure)."""
        agreed: list[Word] = []
        for index, new in enumerate(self._current):
            old = self._previous[index] if index < len(self._previous) else None
            agrees = old is not None and word_key(new.word) == word_key(old.word)
            settled = settled_before is not None and new.end <= settled_before
            if not (agrees or settled):
                break
            agreed.append(new)
        self._commit(agreed)
        self._previous = self._current[len(agreed) :]
        self._current = []
        return agreed

    def flush_all(self) -> list[Word]:
        """End of an utterance (or of the stream): the latest hypothesis is final."""
        words = self._current or self._previous
        self._commit(words)
        self._previous, self._current = [], []
        return words

    def _repeats_committed(self, words: list[Word]) -> int:
        """How many of a hypothesis' first words say the last committed words again (a decoder
        forced through the committed text, with little new audio after it, may read it twice)."""
        keys = [word_key(w.word) for w in words]
        for n in range(min(len(keys), len(self._committed_tail)), 1, -1):
            if keys[:n] == self._committed_tail[-n:]:
                return n
        return 0

    @property
    def pending(self) -> list[Word]:
        """The latest hypothesis' words not yet committed (for a partial)."""
        return self._previous

    def _commit(self, words: list[Word]) -> None:
        if words:
            self.committed_end = words[-1].end
            self._committed_tail = (self._committed_tail + [word_key(w.word) for w in words])[-20:]
