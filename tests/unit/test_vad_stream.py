"""The channel VAD on a real recording with the Silero model faster-whisper ships: audio that
lands while a batch is being scored is scored before `update` returns, so a window cut right
after it never covers unscored speech (which would be taken for silence and dropped)."""

from __future__ import annotations

import numpy as np

from api.audio_track import AudioTrack
from api.vad_stream import CHUNK, StreamingVad
from bench.scoring import Clip
from tests.audio_utils import read_wav, to_pcm16


def clip_pcm(manifest: dict[str, Clip]) -> np.ndarray:
    return np.frombuffer(to_pcm16(read_wav(manifest["fleurs-pt-002"].path)), "<i2")


async def test_audio_arriving_during_scoring_is_scored_before_update_returns(
    manifest: dict[str, Clip],
) -> None:
    pcm = clip_pcm(manifest)
    head = 4800  # the first 300 ms frame: silence before the speaker starts
    track, vad = AudioTrack(keep_sec=20), StreamingVad()
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
    assert not vad.speech_between(0, head // CHUNK * CHUNK), "the first batch is silence"
    assert vad.speech_between(0, track.received), "the burst's speech is known at once"


async def test_scores_equal_one_pass_however_the_audio_arrives(
    manifest: dict[str, Clip],
) -> None:
    pcm = clip_pcm(manifest)
    whole: list[np.ndarray] = []
    one = StreamingVad()
    one.listeners.append(lambda first, probs: whole.append(probs))
    track = AudioTrack(keep_sec=20)
    track.append(pcm, 0.0)
    await one.update(track)

    pieces: list[np.ndarray] = []
    split = StreamingVad()
    split.listeners.append(lambda first, probs: pieces.append(probs))
    track = AudioTrack(keep_sec=20)
    for start in range(0, pcm.size, 1000):  # frames that do not line up with chunks
        track.append(pcm[start : start + 1000], 0.0)
        await split.update(track)
    assert len(pieces) > 1
    np.testing.assert_allclose(np.concatenate(pieces), np.concatenate(whole), atol=1e-4)
