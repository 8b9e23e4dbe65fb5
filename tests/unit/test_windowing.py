"""Where windows are cut, the per-channel audio buffer and the edge audio decoder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.audio_input import ALAW, MULAW, EdgeDecoder
from api.core.track import AudioTrack
from api.core.windowing import (
    Cut,
    CutPlan,
    choose_cut,
    frame_db,
    quiet_runs,
    quiet_threshold,
)
from contracts.audio import float_to_pcm16
from contracts.words import repeated_tail_start

PLAN = CutPlan(min_frames=200, search_frames=50, max_frames=400, pause_frames=15)
LOUD, QUIET = -20.0, -70.0


def energies(*parts: tuple[int, float]) -> np.ndarray:
    return np.concatenate([np.full(n, db, dtype=np.float32) for n, db in parts])


def test_waits_for_min_window() -> None:
    assert choose_cut(energies((199, LOUD)), -45, PLAN) is None


def test_cuts_half_a_pause_into_the_first_pause_after_min() -> None:
    db = energies((150, LOUD), (20, QUIET), (55, LOUD), (20, QUIET))
    # the pause before 2.0 s does not count; the one from 225 does, and it is enough
    assert choose_cut(db, -45, PLAN) == Cut(at=232, needed=240)


def test_cut_does_not_depend_on_how_much_of_the_pause_has_arrived() -> None:
    head = energies((150, LOUD), (20, QUIET), (55, LOUD))
    cuts = {
        choose_cut(np.concatenate((head, energies((n, QUIET)), tail)), -45, PLAN)
        for n in (15, 20, 25)
        for tail in (np.zeros(0, np.float32), energies((300, LOUD)))
    }
    assert cuts == {Cut(232, 240)}


@settings(max_examples=300, deadline=None)
@given(
    levels=st.lists(st.sampled_from([LOUD, QUIET, -44.0, -46.0]), min_size=150, max_size=500),
    extra=st.integers(min_value=1, max_value=300),
)
def test_more_audio_than_needed_decides_the_same(levels: list[float], extra: int) -> None:
    """The cut depends on the audio alone: once a decision is known, more pending audio (a
    late look, a fast client) never changes it, unless the pool is behind."""
    db = np.repeat(np.array(levels, dtype=np.float32), 2)
    for n in range(PLAN.min_frames, db.size - extra, 7):
        cut = choose_cut(db[:n], -45, PLAN)
        if cut is not None:
            assert cut.needed <= n
            assert choose_cut(db[: n + extra], -45, PLAN) == cut
            assert choose_cut(db[: cut.needed], -45, PLAN) == cut
            break


def test_short_dips_are_not_pauses_and_search_waits() -> None:
    db = energies((205, LOUD), (10, QUIET), (20, LOUD))  # 100 ms dip < 150 ms pause
    assert choose_cut(db, -45, PLAN) is None  # still within the 0.5 s search


def test_no_pause_cuts_at_quietest_100ms_when_search_ends() -> None:
    db = energies((200, LOUD), (50, LOUD))
    db[230:240] = -35.0  # quieter, but not a pause
    assert choose_cut(db, -45, PLAN) == Cut(235, 250)


def test_behind_prefers_the_last_pause_up_to_max() -> None:
    db = energies((220, LOUD), (20, QUIET), (100, LOUD), (20, QUIET), (100, LOUD))
    # 460 frames pending and the pool slower than real time: one long window
    assert choose_cut(db, -45, PLAN, behind=True) == Cut(347, 460)
    # the same pending audio with a pool that keeps up (a client sending fast): the first pause
    assert choose_cut(db, -45, PLAN) == Cut(227, 235)


def test_threshold_is_relative_to_the_speaker() -> None:
    quiet_talker = np.concatenate([np.full(900, -55.0), np.full(100, -85.0)])
    loud_talker = quiet_talker + 40
    assert quiet_threshold(quiet_talker) == pytest.approx(-79.0)  # just over the floor
    assert quiet_threshold(loud_talker) == pytest.approx(-39.0)
    assert quiet_runs(np.array([False, True, True, False, True])) == [(1, 3), (4, 5)]


def test_frame_db_of_full_scale_and_silence() -> None:
    loud = np.full(320, 32767, dtype=np.int16)
    assert frame_db(loud) == pytest.approx([0.0, 0.0], abs=0.01)
    assert frame_db(np.zeros(160, dtype=np.int16))[0] == -100.0


def test_audio_track_keeps_context_and_offsets() -> None:
    track = AudioTrack(keep_sec=1.0)
    chunk = np.arange(16000, dtype=np.int16)
    for i in range(5):
        track.append(chunk, arrival=float(i))
    assert track.received == 80000 and track.pending == 80000
    assert track.advance(32000) == (0, 32000)
    assert track.pending == 48000 and track.pending_db.size == 300
    assert np.array_equal(track.audio(16000, 16010), chunk[:10])
    for i in range(20):  # force compaction: context older than 1 s may go
        track.append(chunk, arrival=5.0 + i)
    assert track.base <= track.cursor - 16000
    assert np.array_equal(track.audio(track.cursor, track.cursor + 5), chunk[:5])
    assert track.arrival_of(16000 * 3 - 1) == 2.0


def test_released_track_frees_its_samples_and_keeps_its_offsets() -> None:
    track = AudioTrack(keep_sec=1.0, start_offset=1000)
    for i in range(40):  # 40 s: the buffer has grown past its first 16 s
        track.append(np.ones(16000, dtype=np.int16), arrival=float(i))
    track.advance(16000 * 30)
    received = track.received
    track.release()
    assert track.received == received and track.pending == 0
    assert track.audio(1000, received).size == 0
    assert track._pcm.nbytes == 0 and track.pending_db.size == 0
    assert track.arrival_of(received - 1) is None


def test_decoder_keeps_partial_samples_for_the_next_frame() -> None:
    decoder = EdgeDecoder("pcm_s16le", 16000, 1)
    data = np.arange(10, dtype="<i2").tobytes()
    first = decoder.feed(data[:5])[0]
    second = decoder.feed(data[5:])[0]
    assert np.array_equal(np.concatenate([first, second]), np.arange(10))


def test_decoder_splits_stereo_and_carries_half_frames() -> None:
    decoder = EdgeDecoder("pcm_s16le", 16000, 2)
    interleaved = np.array([1, -1, 2, -2, 3, -3], dtype="<i2").tobytes()
    left1, right1 = decoder.feed(interleaved[:6])  # 1.5 frames
    left2, right2 = decoder.feed(interleaved[6:])
    assert list(np.concatenate([left1, left2])) == [1, 2, 3]
    assert list(np.concatenate([right1, right2])) == [-1, -2, -3]


def test_g711_tables_round_trip_loud_and_quiet_values() -> None:
    assert MULAW[0xFF] == 0.0 and ALAW[0xD5] == pytest.approx(8 / 32768)
    assert MULAW[0x00] == pytest.approx(-32124 / 32768)
    assert ALAW[0xAA] == pytest.approx(32256 / 32768)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_streaming_resampler_keeps_duration_and_tone(rate: int) -> None:
    seconds = 2
    t = np.arange(rate * seconds) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype("<f4")
    decoder = EdgeDecoder("pcm_f32le", rate, 1)
    frame = int(rate * 0.3) * 4 + 3  # frames that end mid-sample
    raw = tone.tobytes()
    out = [decoder.feed(raw[i : i + frame])[0] for i in range(0, len(raw), frame)]
    out.append(decoder.flush()[0])
    audio = np.concatenate(out).astype(np.float32) / 32768
    assert abs(audio.size - 16000 * seconds) <= 2
    spectrum = np.abs(np.fft.rfft(audio[1000:-1000]))
    peak_hz = np.argmax(spectrum) * 16000 / (audio.size - 2000)
    assert peak_hz == pytest.approx(440, abs=2)
    # no clicks at frame edges: the signal stays a clean sine (little energy off the peak)
    assert spectrum.max() / np.median(spectrum) > 1000


def test_a_looping_tail_is_cut() -> None:
    looping = " este é um teste dos modelos acústicos treinados foi um teste dos modelos acústicos"
    assert repeated_tail_start(looping.split()) == 9  # "um teste dos modelos acústicos" again
    fine = [
        "eu",
        "quero",
        "uma",
        "coxinha",
        "de",
        "frango",
        "e",
        "eu",
        "quero",
        "um",
        "suco",
        "de",
        "laranja",
    ]
    assert repeated_tail_start(fine) == len(fine)


@pytest.mark.parametrize(("encoding", "rate"), [("pcm_s16le", 48000), ("pcm_f32le", 44100)])
def test_edge_conversion_is_transparent(encoding: str, rate: int) -> None:
    """16 kHz speech-band audio sent at another rate comes back as the same 16 kHz samples:
    same length, no lag, > 50 dB SNR (measured 55.6 / 55.8 dB on pt-longform-dev)."""
    import soxr

    rng = np.random.default_rng(5)
    n = 16000 * 3
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / 16000) > 7000] = 0  # what a 16 kHz capture can carry
    band_limited = np.fft.irfft(spectrum, n)
    original = (0.1 * band_limited / np.std(band_limited)).astype(np.float32)
    sent = soxr.resample(original, 16000, rate, "VHQ").astype(np.float32)
    if encoding == "pcm_s16le":
        raw = float_to_pcm16(sent).tobytes()
        width = 2
    else:
        raw = sent.astype("<f4").tobytes()
        width = 4
    decoder = EdgeDecoder(encoding, rate, 1)
    frame = int(rate * 0.3) * width + 1  # frames that end mid-sample
    out = [a for i in range(0, len(raw), frame) for a in decoder.feed(raw[i : i + frame])]
    out += decoder.flush()
    back = np.concatenate(out).astype(np.float32) / 32768
    assert back.size == original.size
    inner = slice(800, -800)  # the filters' start and end
    error = back[inner] - original[inner]
    snr_db = 10 * np.log10(np.sum(original[inner] ** 2) / np.sum(error**2))
    assert snr_db > 50, snr_db
