"""Word alignment and per-word latency of the benchmark, on fake event streams."""

from __future__ import annotations

import pytest

from bench.latency import (
    Distribution,
    RefWord,
    TimedEvent,
    audio_sent_by,
    frame_index,
    reference_words,
    send_time,
    timed_events,
    word_latencies,
)
from bench.scoring import exact_matches, tokens
from bench.session_runner import SessionRecord, frames_of

F = 0.3  # frame seconds


def ref(*words: tuple[str, float, float]) -> list[RefWord]:
    return [RefWord(token, start, end) for token, start, end in words]


COXINHA = ref(
    ("eu", 0.10, 0.25),
    ("quero", 0.30, 0.62),  # ends in frame 2 -> due at 0.9
    ("uma", 0.70, 0.90),  # ends exactly on a frame edge: frame 2 -> due at 0.9
    ("coxinha", 1.00, 1.55),  # frame 5 -> due at 1.8
)


def test_frame_of_a_word_end() -> None:
    assert frame_index(0.25, F, 10) == 0
    assert frame_index(0.30, F, 10) == 0  # the last sample of a word ending at 0.3 is in frame 0
    assert frame_index(0.3001, F, 10) == 1
    assert frame_index(0.62, F, 10) == 2
    assert frame_index(99.0, F, 10) == 9  # the last (short) frame holds the tail
    assert send_time(0.62, F, 10) == pytest.approx(0.9)
    assert send_time(0.0, F, 10) == pytest.approx(0.3)


def test_audio_sent_by() -> None:
    assert audio_sent_by(0.29, F, 10) == 0.0
    assert audio_sent_by(0.3, F, 10) == pytest.approx(0.3)
    assert audio_sent_by(0.95, F, 10) == pytest.approx(0.9)
    assert audio_sent_by(100.0, F, 10) == pytest.approx(3.0)


def test_transcripts_only_first_sight_is_final() -> None:
    events = [
        TimedEvent(2.0, "transcript", "Eu quero"),
        TimedEvent(3.5, "transcript", "uma coxinha."),
    ]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.final == pytest.approx([2.0 - 0.3, 2.0 - 0.9, 3.5 - 0.9, 3.5 - 1.8])
    assert lat.first == lat.final
    assert lat.matched_fraction == 1.0
    assert lat.first_word_latency() == pytest.approx(1.7)


def test_partials_give_first_sight_at_the_aligned_position() -> None:
    events = [
        TimedEvent(1.0, "partial", "eu"),
        TimedEvent(1.2, "partial", "Eu quero"),
        TimedEvent(2.5, "transcript", "Eu quero uma"),
        TimedEvent(2.8, "partial", "coxa"),  # a wrong word is not a sighting
        TimedEvent(3.0, "partial", "coxinha"),
        TimedEvent(3.4, "transcript", "coxinha"),
        TimedEvent(3.6, "ack", ""),  # ignored
    ]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.first == pytest.approx([1.0 - 0.3, 1.2 - 0.9, 2.5 - 0.9, 3.0 - 1.8])
    assert lat.final == pytest.approx([2.5 - 0.3, 2.5 - 0.9, 2.5 - 0.9, 3.4 - 1.8])


def test_events_out_of_order_are_sorted() -> None:
    events = [
        TimedEvent(3.4, "transcript", "coxinha"),
        TimedEvent(2.5, "transcript", "eu quero uma"),
    ]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.final[0] == pytest.approx(2.2)


def test_a_partial_word_is_not_matched_to_a_later_occurrence_not_yet_spoken() -> None:
    words = ref(
        ("x", 0.0, 0.2), ("de", 0.3, 0.5), ("y", 0.6, 0.8), ("z", 2.0, 2.2), ("de", 5.0, 5.2)
    )  # fmt: skip
    events = [
        TimedEvent(0.9, "partial", "de"),  # heard only the first 0.9 s
        TimedEvent(6.0, "transcript", "x de y z de"),
    ]
    lat = word_latencies(words, events, F, n_frames=18)
    assert lat.first[1] == pytest.approx(0.9 - 0.6)
    assert lat.first[4] == pytest.approx(6.0 - 5.4)  # not "seen" before it was spoken


def test_substitutions_and_insertions_are_not_matches() -> None:
    events = [TimedEvent(3.0, "transcript", "eu quero, hum, uma coxa")]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.final[3] is None and lat.first[3] is None
    assert lat.matched_fraction == pytest.approx(0.75)
    assert lat.final_values() == pytest.approx([2.7, 2.1, 2.1])


def test_words_seen_in_a_partial_but_never_final_are_counted_apart() -> None:
    events = [
        TimedEvent(2.0, "partial", "eu quero uma coxinha"),
        TimedEvent(3.0, "transcript", "eu quero uma"),
        TimedEvent(4.0, "transcript", "cochinha"),
    ]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.seen_only_in_partials == 1
    assert lat.final[3] is None
    assert lat.first[:3] == pytest.approx([1.7, 1.1, 1.1])  # first seen in the partial


def test_a_transcript_clears_the_partial() -> None:
    words = ref(("x", 0.0, 0.2), ("y", 0.3, 0.5), ("x", 0.6, 0.8), ("y", 0.9, 1.1))
    events = [
        TimedEvent(0.7, "partial", "x y"),
        TimedEvent(1.0, "transcript", "x y"),  # a stale "x y" partial would make ref 2 seen here
        TimedEvent(2.0, "transcript", "x y"),
    ]
    lat = word_latencies(words, events, F, n_frames=4, lookahead_sec=0.0)
    assert lat.first == pytest.approx([0.4, 0.1, 2.0 - 0.9, 2.0 - 1.2])
    assert lat.final == pytest.approx([0.7, 0.4, 1.1, 0.8])


def test_a_word_guessed_before_its_end_has_a_negative_latency() -> None:
    events = [
        TimedEvent(1.0, "partial", "eu quero uma coxinha"),
        TimedEvent(2.0, "transcript", "eu quero uma coxinha"),
    ]
    lat = word_latencies(COXINHA, events, F, n_frames=6)
    assert lat.first == pytest.approx([0.7, 0.1, 0.1, -0.8])  # coxinha ends in frame 5 (1.8 s)
    assert lat.final == pytest.approx([1.7, 1.1, 1.1, 0.2])


def test_empty_inputs() -> None:
    lat = word_latencies([], [TimedEvent(1.0, "transcript", "olá")], F, 3)
    assert lat.matched_fraction == 0.0 and lat.final_values() == []
    lat = word_latencies(COXINHA, [], F, 6)
    assert lat.final == [None] * 4 and lat.first_word_latency() is None


def test_reference_words_from_worker_segments() -> None:
    segments = [
        {"words": [{"word": " Construída", "start": 0.2, "end": 0.9}]},
        {
            "words": [
                {"word": " a.C.", "start": 1.0, "end": 1.4},
                {"word": ",", "start": 1.4, "end": 1.4},
            ]
        },
        {"words": [{"word": " Grande", "start": 5.0, "end": 5.5}]},
    ]
    words = reference_words(segments)
    assert [w.token for w in words] == ["construída", "a", "c", "grande"]
    assert words[1].end == words[2].end == 1.4
    sliced = reference_words(segments, offset=0.9, duration=3.0)  # [0.9, 3.9] of the clip
    assert [(w.token, w.start) for w in sliced] == [
        ("a", pytest.approx(0.1)),
        ("c", pytest.approx(0.1)),
    ]


def test_timed_events_keeps_text_events_of_channel_0() -> None:
    records = [
        (0.5, {"event": "ack", "received_offset": 16000, "committed_offset": 0}),
        (1.0, {"event": "partial", "text": "eu", "words": []}),
        (1.1, {"event": "partial", "text": "agent", "channel": 1}),
        (2.0, {"event": "transcript", "text": "eu quero", "channel": 0}),
    ]
    assert timed_events(records) == [
        TimedEvent(1.0, "partial", "eu"),
        TimedEvent(2.0, "transcript", "eu quero"),
    ]


def test_distribution() -> None:
    d = Distribution.of([1.0, 2.0, 3.0, 4.0], keep=True)
    assert (d.n, d.p50, d.max, d.mean) == (4, 2.5, 4.0, 2.5)
    assert d.as_dict()["values"] == [1.0, 2.0, 3.0, 4.0]
    assert Distribution.of([]).as_dict()["p95"] is None


def test_ack_delays_keep_the_once_per_second_acks() -> None:
    record = SessionRecord("s", {}, F, n_frames=20, audio_sec=6.0)
    record.acks = [
        (1.21, 19200, 0),  # frame 3 completed it (sent at 1.2): an interval ack
        (1.50, 19200, 9600),  # after a window: same offset, not tied to a frame
        (2.43, 38400, 9600),  # frame 7, sent at 2.4
        (2.60, 43200, 32000),  # after a window, not 1 s after the last interval ack
    ]
    assert record.ack_delays() == pytest.approx([0.01, 0.03])


def test_frames_of_cuts_the_schedule() -> None:
    frames = frames_of(b"\x00\x01" * 10000, 0.3)  # 10000 samples: 4800 + 4800 + 400
    assert [len(f) for f in frames] == [9600, 9600, 800]


def test_exact_matches_pair_equal_words_only() -> None:
    reference, hypothesis = tokens("a b c d"), tokens("a x c d e")
    assert exact_matches(reference, hypothesis) == [(0, 0), (2, 2), (3, 3)]
    assert exact_matches([], ["a"]) == [] and exact_matches(["a"], []) == []
    assert tokens("Construída, a.C.!") == ["construída", "a", "c"]
