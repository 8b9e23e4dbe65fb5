"""LocalAgreement-2 on hand-made hypotheses."""

from __future__ import annotations

from api.core.local_agreement import HypothesisBuffer
from contracts.worker import Word


def hyp(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [
        Word(word=f" {w}", start=start + i * step, end=start + (i + 1) * step, probability=0.9)
        for i, w in enumerate(text.split())
    ]


def keys(words: list[Word]) -> list[str]:
    return [w.word.strip() for w in words]


def test_commits_only_what_two_hypotheses_agree_on() -> None:
    buffer = HypothesisBuffer()
    buffer.insert(hyp("eu quero uma"))
    assert buffer.flush() == []  # nothing to agree with yet
    assert keys(buffer.pending) == ["eu", "quero", "uma"]
    buffer.insert(hyp("eu quero uma coxinha de"))
    assert keys(buffer.flush()) == ["eu", "quero", "uma"]
    assert keys(buffer.pending) == ["coxinha", "de"]
    buffer.insert(hyp("eu quero uma coxinha de frango"))  # re-heard committed words dropped
    assert keys(buffer.flush()) == ["coxinha", "de"]
    assert keys(buffer.flush_all()) == ["frango"]  # end of utterance: the pending tail is final


def test_disagreement_commits_nothing_and_flush_all_finalises() -> None:
    buffer = HypothesisBuffer()
    buffer.insert(hyp("o romantismo"))
    buffer.flush()
    buffer.insert(hyp("o homem a"))
    assert keys(buffer.flush()) == ["o"]
    buffer.insert(hyp("o romantismo tinha", start=0.0))
    assert keys(buffer.flush_all()) == ["romantismo", "tinha"]
    assert buffer.committed_end == 1.5


def test_committed_text_only_grows() -> None:
    buffer = HypothesisBuffer()
    committed: list[str] = []
    for text in ["a b", "a b c", "a x c d", "a b c d e", "a b c d e f"]:
        buffer.insert(hyp(text))
        committed += keys(buffer.flush())
    committed += keys(buffer.flush_all())
    assert committed == ["a", "b", "c", "d", "e", "f"]


def test_words_with_enough_audio_after_them_are_settled() -> None:
    buffer = HypothesisBuffer()
    buffer.insert(hyp("eu quero uma coxinha"))  # ends at 2.0 s
    assert keys(buffer.flush(settled_before=1.2)) == ["eu", "quero"]  # only these end <= 1.2
    buffer.insert(hyp("eu quero uma coxinha de frango"))
    assert keys(buffer.flush(settled_before=1.0)) == ["uma", "coxinha"]  # agreement
