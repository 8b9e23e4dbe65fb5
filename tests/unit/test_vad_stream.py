"""The gateway's VAD on a real recording, through onnxruntime with the Silero model file
faster-whisper ships: the same probabilities and speech spans as faster-whisper's own VAD, the
same scores however the audio arrives, and audio that lands while a batch is being scored is
scored before `update` returns (a window cut right after it never covers unscored speech)."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

from api.core.speech import CHUNK, SpeechTimeline
from api.core.track import AudioTrack
from api.vad_model import VadModelMissing, find_model, load_model
from api.vad_stream import StreamingVad
from bench.scoring import Clip
from contracts.audio import pcm16_to_float
from tests.audio_utils import read_wav, to_pcm16


def clip_pcm(manifest: dict[str, Clip], clip: str = "fleurs-pt-002") -> np.ndarray:
    return np.frombuffer(to_pcm16(read_wav(manifest[clip].path)), "<i2")


def streaming_vad() -> StreamingVad:
    return StreamingVad(load_model(find_model()), SpeechTimeline())


def test_same_probabilities_and_spans_as_faster_whispers_vad(manifest: dict[str, Clip]) -> None:
    audio = pcm16_to_float(clip_pcm(manifest, "fleurs-pt-000"))
    ours = load_model(find_model()).probabilities(audio)
    padded = np.pad(audio, (0, CHUNK - audio.size % CHUNK))
    theirs = get_vad_model()(padded).reshape(-1)[: ours.size]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    timeline = SpeechTimeline()
    timeline.add(0, ours)
    options = VadOptions(
        threshold=0.5, min_silence_duration_ms=500, speech_pad_ms=200, min_speech_duration_ms=100
    )
    expected = [
        (round(s["start"] / 16000, 3), round(s["end"] / 16000, 3))
        for s in get_speech_timestamps(audio[: ours.size * CHUNK], options)
    ]
    assert timeline.spans(0, ours.size * CHUNK) == expected
    assert len(expected) >= 2  # the clip has pauses: the comparison means something


def test_the_model_file_is_checked(tmp_path) -> None:
    fake = tmp_path / "silero_vad_v6.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(VadModelMissing, match="not the Silero v6 model"):
        find_model(fake)
    with pytest.raises(VadModelMissing, match="not a file"):
        find_model(tmp_path / "missing.onnx")


async def test_audio_arriving_during_scoring_is_scored_before_update_returns(
    manifest: dict[str, Clip],
) -> None:
    pcm = clip_pcm(manifest)
    head = 4800  # the first 300 ms frame: silence before the speaker starts
    track, vad = AudioTrack(keep_sec=20), streaming_vad()
    track.append(pcm[:head], 0.0)
    batches: list[int] = []

    def rest_arrives(first: int, probs: np.ndarray) -> None:
        # the first batch is scored in a thread; the client's burst lands meanwhile
        if not batches:
            track.append(pcm[head:], 0.0)
        batches.append(probs.size)

    vad.listeners.append(rest_arrives)
    await vad.update(track)

    assert len(batches) == 2 and batches[0] == head // CHUNK
    assert track.received - sum(batches) * CHUNK < CHUNK  # only a partial chunk is left
    assert not vad.timeline.speech_between(0, head // CHUNK * CHUNK), "the first batch: silence"
    assert vad.timeline.speech_between(0, track.received), "the burst's speech is known at once"


async def test_scores_equal_one_pass_however_the_audio_arrives(
    manifest: dict[str, Clip],
) -> None:
    pcm = clip_pcm(manifest)
    one = streaming_vad()
    track = AudioTrack(keep_sec=20)
    track.append(pcm, 0.0)
    await one.update(track)

    split = streaming_vad()
    batches: list[int] = []
    split.listeners.append(lambda first, probs: batches.append(probs.size))
    track = AudioTrack(keep_sec=20)
    for start in range(0, pcm.size, 1000):  # frames that do not line up with chunks
        track.append(pcm[start : start + 1000], 0.0)
        await split.update(track)
    assert len(batches) > 1
    end = one.timeline.scored_until
    assert split.timeline.scored_until == end
    np.testing.assert_allclose(split.timeline._probs, one.timeline._probs, atol=1e-5)
    assert split.timeline.spans(0, end) == one.timeline.spans(0, end)
