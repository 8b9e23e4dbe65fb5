"""The session core without sockets, model or worker: every decision of a live session, driven
with audio levels, VAD scores and worker responses.

Two kinds of test. Replays of recorded real worker responses (tests/fixtures/, recorded by
`python -m tests.record_fixtures` from the real model on dev-set clips) show the behaviour on
what whisper really answers, and that it depends on the audio alone. Scripted responses pin
each rule exactly: a word split at a cut is held back, context is heard but not repeated,
the retry without context, utterance_end, stream-mode commits, resume offsets, backpressure.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.config import GatewaySettings
from api.core.speech import CHUNK
from api.core.steps import WindowRequest
from bench.scoring import load_manifest, normalize
from contracts.audio import SAMPLE_RATE
from contracts.worker import Segment, TranscriptionResponse, Word
from tests.core_driver import FIXTURES, Recorded, Run, drive, make_core
from tests.record_fixtures import SCENARIOS, scenario_audio
from tests.words_utils import assert_in_order_once

SR = SAMPLE_RATE
BALANCED = {"language": "pt", "profile": "balanced", "partials": False}


# ---- scripted audio and answers ------------------------------------------------------------


def scripted(*parts: tuple[float, bool]) -> tuple[np.ndarray, np.ndarray]:
    """PCM and VAD probabilities for (seconds, speech?) parts: speech is a -20 dBFS tone the
    VAD scores 0.9, the rest digital silence scored 0.05."""
    pcm, speech = [], []
    for seconds, is_speech in parts:
        n = int(seconds * SR)
        t = np.arange(n) / SR
        pcm.append((3000 * np.sin(2 * np.pi * 220 * t) if is_speech else np.zeros(n)).astype("<i2"))
        speech.append(np.full(n, is_speech))
    audio, mask = np.concatenate(pcm), np.concatenate(speech)
    probs = np.array(
        [
            0.9 if mask[i : i + CHUNK].mean() > 0.5 else 0.05
            for i in range(0, mask.size - CHUNK + 1, CHUNK)
        ],
        dtype=np.float32,
    )
    return audio, probs


def answer(request: WindowRequest, *words: tuple[str, float, float]) -> TranscriptionResponse:
    """A response with these words (absolute seconds of the session's timeline): those whose
    middle the request's audio holds, their times clipped to it, as whisper stretches a word
    cut at the end of its input; after a forced prefix, only the words that follow it (as the
    worker answers)."""
    offset, length = request.start / SR, (request.end - request.start) / SR
    out = [
        Word(
            word=f" {w}",
            start=round(max(a - offset, 0.0), 3),
            end=round(min(b - offset, length), 3),
            probability=0.9,
        )
        for w, a, b in words
        if offset <= (a + b) / 2 < request.end / SR
    ][len((request.options.prefix or "").split()) :]
    segments = (
        [
            Segment(
                id=0,
                start=0.0,
                end=out[-1].end,
                text="".join(w.word for w in out),
                avg_logprob=-0.2,
                no_speech_prob=0.01,
                words=out,
            )
        ]
        if out
        else []
    )
    return TranscriptionResponse(
        text="".join(w.word for w in out).strip(),
        language="pt",
        language_probability=1.0,
        duration_sec=(request.end - request.start) / SR,
        speech_sec=sum(b - a for a, b in request.speech_spans or []),
        speech_spans=request.speech_spans or [],
        segments=segments,
    )


def words_of(run: Run) -> list[dict[str, Any]]:
    return [w for e in run.of("transcript") for w in e["words"]]


def assert_sound(run: Run, duration: float) -> None:
    """In order, nothing twice, everything committed, acks never going back."""
    assert [e["segment_id"] for e in run.of("transcript")] == list(range(len(run.of("transcript"))))
    assert_in_order_once(words_of(run))
    acks = [e["committed_offset"] for e in run.of("ack")]
    assert acks == sorted(acks)
    assert acks[-1] == round(duration * SR)


# ---- rules, one by one -----------------------------------------------------------------------


def test_a_word_split_at_the_cut_is_held_back_and_sent_with_the_next_window() -> None:
    # speech to 2.3 s, a 0.3 s pause (the cut: 2.375 s), speech to 5 s
    audio, probs = scripted((2.3, True), (0.3, False), (2.4, True))
    # "três" ends where whisper lost it, before the speech does: the VAD hears more after it
    said = [("um", 0.2, 1.0), ("dois", 1.1, 2.0), ("três", 2.05, 2.2), ("quatro", 2.7, 4.8)]
    run = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said))
    first, second = run.requests[0], run.requests[1]
    assert first.end == round(2.37 * SR)  # half a pause (150 ms) into it
    assert [w["word"] for w in run.of("transcript")[0]["words"]] == ["um", "dois"]
    assert second.since == round(2.05 * SR)  # from the held word's start
    assert second.start < second.since  # with context before it
    assert [w["word"] for w in words_of(run)] == ["um", "dois", "três", "quatro"]
    assert_sound(run, 5.0)


def test_context_is_heard_and_what_it_holds_is_not_sent_again() -> None:
    audio, probs = scripted((2.3, True), (0.3, False), (2.4, True))
    # "dois" ends with the speech: the second window takes over from its end and hears it
    # again in its context
    said = [("um", 0.2, 1.0), ("dois", 1.1, 2.3), ("quatro", 2.7, 4.8)]
    run = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said))
    second = run.requests[1]
    assert second.since == round(2.3 * SR)  # takes over from the last word's end
    assert second.start == round(0.1 * SR)  # the context starts at a word already sent, -0.1 s
    assert [w["word"] for w in words_of(run)] == ["um", "dois", "quatro"]
    assert_sound(run, 5.0)


def dropping_the_new_words(request: WindowRequest) -> TranscriptionResponse:
    """Whisper hears the second window's context and drops what follows, once."""
    said = [("um", 0.2, 1.0), ("dois", 1.1, 2.3), ("quatro", 2.7, 4.3)]
    if request.purpose == "window" and request.start < request.since and request.end < 4.6 * SR:
        return answer(request, *said[:2])
    return answer(request, *said)


def test_no_new_words_with_context_carries_the_window_into_the_next() -> None:
    audio, probs = scripted((2.3, True), (0.3, False), (1.8, True), (0.3, False), (1.5, True))
    run = drive(make_core(BALANCED), audio, probs, dropping_the_new_words)
    _, second, third = run.requests[:3]
    assert second.since == third.since == round(2.3 * SR)  # nothing committed: heard again
    assert third.end > second.end
    assert not [r for r in run.requests if r.purpose == "alone"]
    assert [w["word"] for w in words_of(run)] == ["um", "dois", "quatro"]
    assert_sound(run, 6.2)


def test_or_retries_the_new_audio_alone() -> None:
    audio, probs = scripted((2.3, True), (0.3, False), (1.8, True), (0.3, False), (1.5, True))
    settings = GatewaySettings(batch_empty_window="alone")
    run = drive(make_core(BALANCED, settings), audio, probs, dropping_the_new_words)
    alone = [r for r in run.requests if r.purpose == "alone"]
    assert alone and all(r.start == r.since == round(2.3 * SR) for r in alone)
    assert [w["word"] for w in words_of(run)] == ["um", "dois", "quatro"]
    assert_sound(run, 6.2)


def test_a_second_of_silence_finalises_and_ends_the_utterance() -> None:
    audio, probs = scripted((1.5, True), (2.0, False), (1.0, True), (0.3, False))
    said = [("olá", 0.1, 0.7), ("mundo", 0.8, 1.45), ("tchau", 3.6, 4.4)]
    run = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said))
    ends = run.of("utterance_end")
    speech_end = (1.5 * SR // CHUNK + 1) * CHUNK / SR  # the last chunk scored as speech
    assert ends[0]["end"] == pytest.approx(speech_end, abs=CHUNK / SR)
    # the window cut in the pause went first; the endpoint finalised what followed it, in a
    # window that ends where the second of silence was complete
    assert run.requests[0].end == round(2.07 * SR)
    assert any(r.end == round(ends[0]["end"] * SR) + SR for r in run.requests)
    # the transcript before the utterance_end holds the whole utterance
    index = run.events.index(ends[0])
    before = [e for e in run.events[:index] if e["event"] == "transcript"]
    assert [w["word"] for e in before for w in e["words"]] == ["olá", "mundo"]
    assert [w["word"] for w in words_of(run)] == ["olá", "mundo", "tchau"]
    assert_sound(run, 4.8)


def test_stream_mode_commits_what_two_passes_agree_on() -> None:
    audio, probs = scripted((3.0, True), (0.6, False))
    said = [("a", 0.1, 0.5), ("b", 0.6, 0.9), ("c", 1.2, 1.6), ("d", 2.1, 2.6)]
    start = {"language": "pt", "mode": "stream", "partials": False}
    settings = GatewaySettings(stream_min_chunk_sec=1.0)
    run = drive(make_core(start, settings), audio, probs, lambda r: answer(r, *said))
    ends = [r.end for r in run.requests]
    assert ends[:3] == [SR, 2 * SR, 3 * SR]  # one pass per second of audio
    transcripts = run.of("transcript")
    # pass 2 agrees with pass 1 on "a b" (c was cut off in pass 1: not agreed yet)
    assert [w["word"] for w in transcripts[0]["words"]] == ["a", "b"]
    # the pause (300 ms of silence after speech) makes the rest final at once
    assert [w["word"] for w in words_of(run)] == ["a", "b", "c", "d"]
    assert all(r.start == 0 for r in run.requests[:3])  # the buffer grows from the start
    assert_sound(run, 3.6)


def test_a_new_session_continues_the_timeline_and_transcribes_none_of_its_context() -> None:
    audio, probs = scripted((6.0, True), (0.3, False), (2.0, True))
    cut, context = 4 * SR, 3 * SR  # a lost session committed up to 4 s; 3 s of context
    first = cut - context // CHUNK * CHUNK
    said = [("um", 1.0, 2.0), ("dois", 2.5, 3.9), ("três", 4.1, 5.9), ("quatro", 6.5, 8.0)]
    core = make_core(
        BALANCED, timeline_offset=cut, context_samples=context, context_word_starts=(int(2.5 * SR),)
    )
    run = drive(
        core,
        audio[cut - context :],
        probs[(first // CHUNK) :],
        lambda r: answer(r, *said),
        first_chunk_at=first,
    )
    assert run.requests[0].since == cut and run.requests[0].start == int(2.4 * SR)
    assert [w["word"] for w in words_of(run)] == ["três", "quatro"]
    acks = run.of("ack")
    assert acks[0]["received_offset"] >= cut and acks[0]["committed_offset"] >= cut
    assert core.received == len(audio) and core.committed == len(audio)


def test_a_pool_slower_than_real_time_grows_the_windows_and_says_so() -> None:
    parts = [(0.8, True), (0.3, False)] * 20  # a pause every 1.1 s: 22 s of speech
    audio, probs = scripted(*parts)
    said = [(f"w{i}", 1.1 * i + 0.1, 1.1 * i + 0.7) for i in range(20)]
    kept_up = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said), cost_sec=0.6)
    slow = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said), cost_sec=4.0)
    assert not any(t["behind"] for t in kept_up.of("transcript"))
    late = [t for t in slow.of("transcript") if t["behind"]]
    assert late and len(slow.requests) < len(kept_up.requests)  # fewer, longer windows
    longest = max(r.end - r.since for r in kept_up.requests)
    assert max(r.end - r.since for r in slow.requests) > longest + 0.5 * SR
    # nothing lost either way
    assert [w["word"] for w in words_of(slow)] == [w["word"] for w in words_of(kept_up)]
    assert_sound(slow, 22.0)


def test_backpressure_watches_what_is_not_final() -> None:
    settings = GatewaySettings(max_buffered_sec=6.0)
    core = make_core(BALANCED, settings)
    channel = core.channels[0]
    tone = scripted((1.0, True))[0]
    for _ in range(5):
        core.push([tone], 0.0)
    assert core.pending_sec == 5.0 and not core.at_buffer_limit
    core.push([tone], 0.0)
    assert core.at_buffer_limit  # the connection stops reading the socket
    channel.committed_offset = 4 * SR  # windows came back
    assert core.pending_sec == 2.0 and not core.at_buffer_limit
    # never below a full window and a held word: a session cannot wait on unread audio
    assert (
        make_core({"batch_window_sec": 10, "max_batch_window_sec": 20}, settings).buffer_limit_sec
        == 22.0
    )


# ---- replays of recorded worker responses ------------------------------------------------


def fixture_run(name: str, frame_sec: float = 0.3, cost_sec: float = 0.5) -> tuple[Run, dict]:
    path = FIXTURES / f"{name}.json"
    fixture = json.loads(path.read_text())
    scenario = next(s for s in SCENARIOS if s.name == name)
    pcm = scenario_audio(scenario, load_manifest())
    probs = np.array(fixture["probs"], dtype=np.float32)
    settings = GatewaySettings(**scenario.settings)
    if scenario.context_from is None:
        core, audio = make_core(scenario.start, settings), pcm
    else:
        cut = int(scenario.context_from * SR)
        begin = cut - 5 * SR
        core = make_core(scenario.start, settings, cut, cut - begin)
        audio = pcm[begin:]
    run = drive(core, audio, probs, Recorded(path), frame_sec, cost_sec, fixture["first_chunk_at"])
    return run, fixture


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_recorded_sessions_replay_to_the_recorded_text(name: str) -> None:
    run, fixture = fixture_run(name)
    assert [r.key for r in run.requests] == fixture["requests"]
    assert run.text == fixture["expected_text"]
    duration = (run.core.channels[0].track.received) / SR  # type: ignore[union-attr]  # channel 0 of a mono session exists
    assert_sound(run, duration)


@pytest.mark.parametrize("name", ["batch-fleurs-pt-000", "stream-fleurs-pt-000"])
@pytest.mark.parametrize(("frame_sec", "cost_sec"), [(0.05, 0.5), (1.0, 0.7), (0.3, 0.05)])
def test_the_text_depends_on_the_audio_not_on_how_it_arrived(
    name: str, frame_sec: float, cost_sec: float
) -> None:
    """Other frame sizes, a slower or faster pool (still keeping up): the same windows, so the
    same requests and the same text."""
    run, fixture = fixture_run(name, frame_sec, cost_sec)
    assert [r.key for r in run.requests] == fixture["requests"]
    assert run.text == fixture["expected_text"]


def test_recorded_batch_session_holds_back_and_overlaps_on_real_answers() -> None:
    run, _ = fixture_run("batch-fleurs-pt-000")
    windows = [r for r in run.requests if r.purpose == "window"]
    transcripts = run.of("transcript")
    assert all(r.start < r.since for r in windows[1:])  # every later window has context
    overlaps = [b.since < a.end for a, b in itertools.pairwise(windows)]
    assert sum(overlaps) >= len(windows) // 2  # the next window re-hears the last word
    assert len(transcripts) >= 6


def test_recorded_pause_ends_the_utterance() -> None:
    """coxinha (speech to ~3.1 s of its 4.5 s), 2 s of silence, m-001: one utterance_end,
    after every word of the first clip and before any of the second."""
    run, _ = fixture_run("batch-pause")
    ends = run.of("utterance_end")
    assert len(ends) == 1 and 2.8 <= ends[0]["end"] <= 4.5
    index = run.events.index(ends[0])
    before = [w for e in run.events[:index] if e["event"] == "transcript" for w in e["words"]]
    after = [w for e in run.events[index:] if e["event"] == "transcript" for w in e["words"]]
    first = load_manifest()["ufpalign-coxinha"].reference_text
    assert normalize(" ".join(w["word"] for w in before)) == normalize(first)
    assert all(w["end"] <= ends[0]["end"] for w in before), before
    assert after and all(w["start"] > ends[0]["end"] + 1.0 for w in after), after


def test_recorded_resume_hears_context_and_sends_none_of_it() -> None:
    run, _ = fixture_run("resume-fleurs-pt-000")
    assert run.requests[0].since == 8 * SR and run.requests[0].start < 8 * SR
    assert min(w["start"] for w in words_of(run)) >= 8.0 - 0.1


def test_recorded_empty_window_is_carried_into_the_next() -> None:
    """Whisper answered a window with context without its new words: nothing is committed,
    the next window hears that audio again (with more after it) and transcribes it."""
    run, _ = fixture_run("batch-carry")
    windows = [r for r in run.requests if r.purpose == "window"]
    carried = [(a, b) for a, b in itertools.pairwise(windows) if a.since == b.since]
    assert carried and all(b.end > a.end for a, b in carried)
    assert not [r for r in run.requests if r.purpose == "alone"]


def test_recorded_retry_alone_happens_on_real_answers() -> None:
    """The same window with ASR_BATCH_EMPTY_WINDOW=alone: its new audio is asked for alone."""
    run, _ = fixture_run("batch-retry-alone")
    alone = [r for r in run.requests if r.purpose == "alone"]
    assert alone, "the fixture was recorded for a window whisper answered with no new words"
    assert all(r.start == r.since for r in alone)
    assert any(r.purpose == "window" and r.end == alone[0].end for r in run.requests)


def test_fixtures_are_small() -> None:
    assert sum(p.stat().st_size for p in Path(FIXTURES).glob("*.json")) < 2_000_000


# ---- the decoder's forced prefix: the words already sent are not generated again -------------


def test_the_decoder_prefix_is_on_by_default() -> None:
    assert GatewaySettings().decoder_prefix is True


def test_a_window_hears_its_context_as_the_prefix_and_keeps_every_word_after_it() -> None:
    audio, probs = scripted((2.3, True), (0.3, False), (2.4, True))
    # "quatro" starts before the cut-off point the midpoint rule would use: with a prefix the
    # worker's answer holds only new words, all of them kept
    said = [("um", 0.2, 1.0), ("dois", 1.1, 2.3), ("quatro", 2.25, 4.8)]
    run = drive(make_core(BALANCED), audio, probs, lambda r: answer(r, *said))
    first, second = run.requests[0], run.requests[1]
    assert first.options.prefix is None  # nothing sent before it
    assert second.start < second.since and second.options.prefix == "um dois"
    assert [w["word"] for w in words_of(run)] == ["um", "dois", "quatro"]
    assert_sound(run, 5.0)


def test_without_the_words_text_there_is_no_prefix() -> None:
    """A resumed session's context has word starts but no text: no prefix, the old filter."""
    audio, probs = scripted((6.0, True), (0.3, False), (2.0, True))
    cut, context = 4 * SR, 3 * SR
    first = cut - context // CHUNK * CHUNK
    said = [("um", 1.0, 2.0), ("dois", 2.5, 3.9), ("três", 4.1, 5.9), ("quatro", 6.5, 8.0)]
    core = make_core(
        BALANCED, timeline_offset=cut, context_samples=context,
        context_word_starts=(int(2.5 * SR),),
    )  # fmt: skip
    run = drive(
        core, audio[cut - context :], probs[(first // CHUNK) :],
        lambda r: answer(r, *said), first_chunk_at=first,
    )  # fmt: skip
    assert run.requests[0].options.prefix is None
    assert [w["word"] for w in words_of(run)] == ["três", "quatro"]


def test_stream_passes_and_batch_windows_take_their_own_encoder_padding() -> None:
    """Stream passes and batch windows are padded by separate settings (docs/benchmarks.md:
    6 s helped stream passes on both materials, batch windows only on short clips)."""
    audio, probs = scripted((6.0, True), (0.6, False))
    said = [(f"w{i}", 0.5 * i + 0.05, 0.5 * i + 0.4) for i in range(12)]
    settings = GatewaySettings(stream_encoder_pad_sec=6.0, window_encoder_pad_sec=3.0)
    stream = {"language": "pt", "mode": "stream", "partials": False}
    for start, pad in ((stream, 6.0), (BALANCED, 3.0)):
        run = drive(make_core(start, settings), audio, probs, lambda r: answer(r, *said))
        finals = [r for r in run.requests if r.purpose != "partial"]
        assert finals and {r.options.encoder_pad_sec for r in finals} == {pad}, start


def test_stream_passes_hear_the_recent_committed_words_as_their_prefix() -> None:
    audio, probs = scripted((6.0, True), (0.6, False))
    said = [(f"w{i}", 0.5 * i + 0.05, 0.5 * i + 0.4) for i in range(12)]
    start = {"language": "pt", "mode": "stream", "partials": False}
    settings = GatewaySettings(stream_context_sec=2.0)
    run = drive(make_core(start, settings), audio, probs, lambda r: answer(r, *said))
    passes = [r for r in run.requests if r.purpose == "pass"]
    prefixed = [r for r in passes if r.options.prefix]
    assert prefixed, "once words are committed, passes carry them"
    for request in prefixed:
        # the prefix is the committed words the pass's audio holds, from its first sample on
        heard = [w for w, a, _ in said if a >= request.start / SR]
        assert request.options.prefix.split() == heard[: len(request.options.prefix.split())]
        assert request.start >= request.end - (2.0 + 1.0 + 1.2) * SR  # ~context + the new part
    assert [w["word"] for w in words_of(run)] == [w for w, _, _ in said]
    assert_sound(run, 6.6)


def test_a_pass_that_reads_the_committed_words_again_does_not_commit_them_twice() -> None:
    audio, probs = scripted((4.0, True), (0.6, False))
    said = [("a", 0.1, 0.5), ("b", 0.6, 0.9), ("c", 1.2, 1.6), ("d", 2.1, 2.6), ("e", 3.0, 3.8)]

    def rereading(request: WindowRequest) -> TranscriptionResponse:
        out = answer(request, *said)
        prefix = (request.options.prefix or "").split()
        if len(prefix) >= 2 and out.segments:  # the decoder reads its last two words again
            again = [Word(word=f" {w}", start=0.0, end=0.1, probability=0.5) for w in prefix[-2:]]
            words = again + out.segments[0].words
            out.segments[0] = out.segments[0].model_copy(update={"words": words})
        return out

    start = {"language": "pt", "mode": "stream", "partials": False}
    run = drive(make_core(start), audio, probs, rereading)
    assert [w["word"] for w in words_of(run)] == ["a", "b", "c", "d", "e"]
