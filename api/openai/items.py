"""Turn bookkeeping of a Realtime transcription session: which transcript words belong to which
conversation item, the deltas each item has shown, and when its transcript is complete.

The session's timeline is cut into items: an item holds the audio from where the previous one
ended (or the buffer was cleared) to where its turn stopped or the client committed. A word
belongs to the item whose audio holds its start. An item is complete once the pipeline has
finalised its audio (the committed offset its `ack`s report) through its end, or through its
last speech: the pipeline never transcribes audio its VAD heard no speech in, so no later
transcript can hold a word of the item then. Deltas only ever extend what an item has shown: they
follow the committed words and, for an open item, the partial tail where two partials in a row
agree (early partials are noisy, and a delta cannot be taken back); they stop while the text
shown no longer agrees with the words; `completed` always carries the final text.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from api.core.speech import CHUNK
from contracts.words import same_word

Word = tuple[int, str]  # (start sample on the session's timeline, the word)


@dataclass
class Item:
    id: str
    start: int
    end: int | None = None  # None while the turn goes on
    previous_id: str | None = None
    words: list[Word] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # the tail two partials agree on
    last_partial: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # words shown in deltas
    announced: bool = False  # the client knows its id (speech_started or committed)
    committed: bool = False
    done: bool = False
    dropped: bool = False  # cleared before it was committed

    @property
    def transcript(self) -> str:
        return " ".join(word for _, word in self.words)


@dataclass(frozen=True)
class Delta:
    item_id: str
    text: str


@dataclass(frozen=True)
class Completed:
    item_id: str
    transcript: str
    start: int
    end: int
    failure: str | None = None  # the pipeline could not transcribe (part of) its audio


ItemEvent = Delta | Completed


class ItemBook:
    def __init__(self, new_id: Callable[[], str]) -> None:
        self._new_id = new_id
        self.items: list[Item] = []
        self.loose: list[Word] = []  # words of the buffer before any item holds them
        self.floor = 0  # where the uncommitted buffer begins
        self.committed_offset = 0  # the pipeline's: all audio before it is final
        self.cleared: list[tuple[int, int]] = []
        self.heard_until = 0  # the pipeline's VAD has scored the audio before this
        self.speech: list[int] = []  # starts of the speech chunks after the committed offset
        self.failed: list[tuple[int, int, str]] = []
        self.last_committed: str | None = None

    @property
    def open_item(self) -> Item | None:
        last = self.items[-1] if self.items else None
        return last if last is not None and last.end is None and not last.dropped else None

    # ---- the buffer --------------------------------------------------------------------------

    def open(self) -> Item:
        """Speech started: a new item for the buffer, announced to the client."""
        item = Item(self._new_id(), self.floor, announced=True)
        item.words, self.loose = self.loose, []
        self.items.append(item)
        return item

    def commit(self, end: int) -> tuple[Item, list[ItemEvent]]:
        """The buffer up to `end` becomes an item (the open one, if speech started)."""
        item = self.open_item or self.open()
        return item, self.close(item, end)

    def close(self, item: Item, end: int) -> list[ItemEvent]:
        """The item's audio ends at `end`: it is committed, and complete once final there."""
        item.end = max(end, item.start)
        item.partial = []
        keep = [w for w in item.words if w[0] < item.end]
        self.loose = sorted([w for w in item.words if w[0] >= item.end] + self.loose)
        item.words = keep
        item.committed = item.announced = True
        item.previous_id, self.last_committed = self.last_committed, item.id
        self.floor = max(self.floor, item.end)
        return self._settle()

    def clear(self, at: int) -> None:
        """Drop the uncommitted buffer: its item (if speech started) and its words."""
        if (item := self.open_item) is not None:
            item.dropped = True
        if at > self.floor:
            self.cleared.append((self.floor, at))
        self.loose = []
        self.floor = max(self.floor, at)

    # ---- the pipeline ------------------------------------------------------------------------

    def add_words(self, words: list[Word]) -> list[ItemEvent]:
        """Words a transcript made final (they replace the partial tail)."""
        for word in words:
            self._place(word)
        if (item := self.open_item) is not None:
            item.partial, item.last_partial = [], []
        return self._settle()

    def set_partial(self, text: str, start: int | None) -> list[ItemEvent]:
        """The uncommitted tail, starting at `start`: shown for the open item only when it lies
        wholly in it."""
        item = self.open_item
        if item is None or start is None or start < item.start:
            return []
        words = text.split()
        agreed = 0
        while agreed < min(len(words), len(item.last_partial)) and same_word(
            words[agreed], item.last_partial[agreed]
        ):
            agreed += 1
        item.partial, item.last_partial = words[:agreed], words
        return self._settle()

    def advance(self, committed_offset: int) -> list[ItemEvent]:
        self.committed_offset = max(self.committed_offset, committed_offset)
        # no word before the committed offset can come any more: forget what only they needed
        self.speech = [c for c in self.speech if c + CHUNK > self.committed_offset]
        self.cleared = [(a, b) for a, b in self.cleared if b > self.committed_offset]
        return self._settle()

    def hear(self, first: int, speech: np.ndarray) -> list[ItemEvent]:
        """The pipeline VAD's verdict (speech or not) on consecutive chunks from `first`."""
        self.speech.extend(first + int(i) * CHUNK for i in np.flatnonzero(speech))
        self.heard_until = max(self.heard_until, first + speech.size * CHUNK)
        return self._settle()

    def fail(self, start: int, end: int, message: str) -> None:
        self.failed.append((start, end, message))

    # ---- decisions -----------------------------------------------------------------------------

    def _place(self, word: Word) -> None:
        at = word[0]
        if any(a <= at < b for a, b in self.cleared):
            return
        for item in self.items:
            if item.dropped or item.done:
                continue  # a word late for a completed item goes to the next one
            if item.end is None or at < item.end:
                bisect.insort(item.words, word)
                return
        bisect.insort(self.loose, word)

    def _settle(self) -> list[ItemEvent]:
        """Deltas of every item, then the completions now due, in item order."""
        out: list[ItemEvent] = []
        blocked = False  # items complete in order
        for item in self.items:
            if item.dropped or item.done:
                continue
            out.extend(self._delta(item))
            if blocked or not (item.committed and self._final(item)):
                blocked = True
                continue
            assert item.end is not None
            out.append(
                Completed(item.id, item.transcript, item.start, item.end, self._failure(item))
            )
            item.done = True
        # a long session keeps only the items still to complete (the open one among them)
        self.items = [item for item in self.items if not (item.done or item.dropped)]
        pending = self.items[0].start if self.items else self.floor
        self.failed = [f for f in self.failed if f[1] > pending]
        return out

    def _final(self, item: Item) -> bool:
        if item.end is None:
            return False
        if self.committed_offset >= item.end:
            return True
        if self.heard_until < item.end:
            return False
        return not any(c < item.end for c in self.speech)  # (all end after the offset)

    def _delta(self, item: Item) -> list[ItemEvent]:
        if not item.announced:
            return []
        view = [word for _, word in item.words] + (item.partial if item.end is None else [])
        sent = item.sent
        if len(view) <= len(sent):
            return []
        if not all(a == b or same_word(a, b) for a, b in zip(view, sent, strict=False)):
            return []  # the text shown was revised: only `completed` can say it now
        text = " ".join(view[len(sent) :])
        item.sent = view
        return [Delta(item.id, f" {text}" if sent else text)]

    def _failure(self, item: Item) -> str | None:
        assert item.end is not None
        for start, end, message in self.failed:
            if start < item.end and end > item.start:
                return message
        return None
