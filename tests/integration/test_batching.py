"""Cross-session batching with the real embedded model: batched equals unbatched, batches
really form over HTTP, options never mix, a bad input fails alone."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from asr.audio import decode_file
from asr.config import WorkerSettings
from asr.metrics import WorkerMetrics
from asr.model import SpeechModel
from asr.service import TranscriptionService
from bench.scoring import wer
from contracts.audio import float_to_pcm16
from contracts.worker import DecodeOptions, Priority, TranscriptionResponse
from launcher.processes import ManagedProcess, free_port, worker_process
from tests.backend import scaled
from tests.metrics_utils import scrape, value
from tests.promises import hold
from tests.words_utils import assert_same_words

pytestmark = [pytest.mark.timeout(120), pytest.mark.backend]

CLIPS = ["jfk", "librispeech-quilter", "fleurs-en-003", "fleurs-en-004"]
GREEDY = {"language": "en", "beam_size": 1, "temperature": 0.0}
BEAM = {"language": "en", "beam_size": 5, "temperature": 0.0}


@pytest.fixture(scope="module")
def audios(manifest) -> list[np.ndarray]:
    return [decode_file(manifest[c].path.read_bytes()) for c in CLIPS]


@pytest.fixture(scope="module")
def model() -> SpeechModel:
    speech = SpeechModel(WorkerSettings(pack=False, device="cpu"))
    speech.warm_up()
    return speech


@pytest.fixture(scope="module")
def batching_worker(log_dir: Path) -> Iterator[ManagedProcess]:
    env = {"ASR_WORKER_BATCHING": "on", "ASR_WORKER_PACK": "off", "ASR_WORKER_BATCH_WAIT_MS": "20"}
    proc = worker_process(free_port(), env=env, log_dir=log_dir, name="batching-worker").start()
    try:
        yield proc.wait_ready(timeout=scaled(120))
    finally:
        proc.stop()


def post_pcm(url: str, audio: np.ndarray, **form: object) -> dict:
    data = {"format": "pcm_s16le", **{k: str(v) for k, v in form.items()}}
    body = float_to_pcm16(audio).tobytes()
    response = httpx.post(
        f"{url}/transcribe", files={"file": ("w.pcm", body)}, data=data, timeout=scaled(120)
    )
    assert response.status_code == 200, response.text
    return response.json()


def word_times(result: TranscriptionResponse | BaseException) -> list[tuple[str, float, float]]:
    assert isinstance(result, TranscriptionResponse), result
    return [(w.word, w.start, w.end) for s in result.segments for w in s.words]


def test_batch_of_four_equals_batch_of_one(model: SpeechModel, audios) -> None:
    """Greedy: the same words, their times within one alignment frame; beam 5: promise row
    `batched-vs-alone`. The batch-1 path itself matches SpeechModel.transcribe on 23 of 24
    eval windows (docs/benchmarks.md)."""
    greedy = DecodeOptions(**GREEDY)
    together = model.transcribe_batch(audios, [greedy] * len(audios))
    alone = [model.transcribe_batch([a], [greedy])[0] for a in audios]
    for a, b in zip(together, alone, strict=True):
        assert word_times(a), "no words"
        assert_same_words(word_times(a), word_times(b))
    beam = DecodeOptions(**BEAM)
    together = model.transcribe_batch(audios, [beam] * len(audios))
    alone = [model.transcribe_batch([a], [beam])[0] for a in audios]
    refs = [text_of(r) for r in alone]
    hold("batched-vs-alone", wer(refs, [text_of(r) for r in together]), 0.0, refs)


def text_of(result: TranscriptionResponse | BaseException) -> str:
    assert isinstance(result, TranscriptionResponse), result
    return result.text


def test_packed_windows_keep_their_own_words(model: SpeechModel, manifest, audios) -> None:
    """Packing (the CPU lever, opt-in): four clips share two 30 s inputs; their text is as
    good as the same clips unpacked in this run (promise row `packed-vs-unpacked`) and every
    word stays inside its own window."""
    packing = SpeechModel(WorkerSettings(pack=True, device="cpu", warmup=False))
    options = DecodeOptions(**BEAM)
    packed = packing.transcribe_batch(audios, [options] * len(audios))
    unpacked = model.transcribe_batch(audios, [options] * len(audios))
    refs = [manifest[c].reference_text for c in CLIPS]
    for result, audio in zip(packed, audios, strict=True):
        duration = audio.size / 16000
        assert word_times(result)
        for _, start, end in word_times(result):
            assert 0.0 <= start <= end <= duration + 0.01
    measured = wer(refs, [text_of(r) for r in packed])
    hold("packed-vs-unpacked", measured, wer(refs, [text_of(r) for r in unpacked]), refs)


async def test_mixed_options_and_a_bad_input_in_one_batch(model: SpeechModel, audios) -> None:
    """Through the service's batcher: two option groups never share a call, and an input
    that breaks the model call fails alone while its batch mates get their text."""
    service = TranscriptionService(
        WorkerSettings(batching="on", pack=False, device="cpu"), WorkerMetrics()
    )
    service.model = model
    greedy, other = DecodeOptions(**GREEDY), DecodeOptions(**{**GREEDY, "beam_size": 2})
    bad = np.zeros((2, 16000), dtype=np.float32)  # not mono: the VAD refuses it
    jobs = [
        (audios[0], greedy),
        (audios[1], other),
        (bad, greedy),
        (audios[2], greedy),
        (audios[3], other),
    ]
    results = await asyncio.gather(
        *(service.transcribe(a, o, Priority.final) for a, o in jobs), return_exceptions=True
    )
    assert isinstance(results[2], Exception)
    for (audio, options), result in zip(jobs, results, strict=True):
        if audio is bad:
            continue
        assert not isinstance(result, BaseException), result
        assert text_of(result) == text_of(model.transcribe_batch([audio], [options])[0])
    sizes = [r.timing.batch_size if isinstance(r, TranscriptionResponse) else 0 for r in results]
    greedy_sizes = {sizes[i] for i in (0, 3)}
    other_sizes = {sizes[i] for i in (1, 4)}
    assert max(greedy_sizes) <= 3 and max(other_sizes) <= 2  # never mixed
    assert max(greedy_sizes | other_sizes) >= 2
    service.scheduler.shutdown()


def test_four_simultaneous_requests_are_batched_over_http(
    batching_worker: ManagedProcess, audios
) -> None:
    url = batching_worker.url
    alone = [post_pcm(url, a, **GREEDY) for a in audios]
    assert all(body["timing"]["batch_size"] == 1 for body in alone)
    before = scrape(url)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda a: post_pcm(url, a, **GREEDY), audios))
    after = scrape(url)
    assert [b["text"] for b in bodies] == [b["text"] for b in alone]
    count = value(after, "asr_worker_batch_size_count") - value(
        before, "asr_worker_batch_size_count"
    )
    singles = value(after, "asr_worker_batch_size_bucket", le="1.0") - value(
        before, "asr_worker_batch_size_bucket", le="1.0"
    )
    assert count - singles >= 1, "no batch of two or more was recorded"
    total = value(after, "asr_worker_batch_size_sum") - value(before, "asr_worker_batch_size_sum")
    assert total == 4 and count < 4
    assert max(b["timing"]["batch_size"] for b in bodies) >= 2
    assert value(after, "asr_worker_batch_wait_seconds_count") >= count


def live_options(prefix: str | None, beam: int = 1) -> DecodeOptions:
    """A live window as the gateway asks for it: short encoder input, its own prefix."""
    return DecodeOptions(
        language="en", beam_size=beam, temperature=0.0, encoder_pad_sec=3.0, prefix=prefix
    )


def test_live_windows_with_their_own_prefixes_share_a_call(model: SpeechModel, audios) -> None:
    """Each window its own prefix (the words its context holds), one encoder input length:
    one call, and each window's words are what it gets alone (greedy: the same words, their
    times within one alignment frame)."""
    windows = [a[: int(4.3 * 16000)] for a in audios]  # one encoder input length for all
    first = [model.transcribe_batch([w], [live_options(None)])[0] for w in windows]
    prefixes = []
    for result in first:
        assert not isinstance(result, Exception)
        words = [w.word for s in result.segments for w in s.words]
        prefixes.append("".join(words[:2]).strip() or None)
    options = [live_options(p) for p in prefixes]
    together = model.transcribe_batch(windows, options)
    alone = [model.transcribe_batch([w], [o])[0] for w, o in zip(windows, options, strict=True)]
    for a, b, p in zip(together, alone, prefixes, strict=True):
        assert_same_words(word_times(a), word_times(b))
        if p:  # what the prefix said is not said again
            assert not text_of(a).lower().startswith(p.lower())


async def test_the_batcher_groups_live_windows_by_input_length_not_prefix(
    model: SpeechModel, audios
) -> None:
    service = TranscriptionService(
        WorkerSettings(batching="on", pack=False, device="cpu"), WorkerMetrics()
    )
    service.model = model
    same = [a[: int(4.3 * 16000)] for a in audios[:3]]
    longer = audios[0][: int(9.0 * 16000)]  # another encoder input length: its own call
    jobs = [(same[0], "And so"), (same[1], None), (longer, "And so"), (same[2], "Mister")]
    results = await asyncio.gather(
        *(service.transcribe(a, live_options(p), Priority.final) for a, p in jobs)
    )
    sizes = [r.timing.batch_size for r in results]
    assert sizes[2] == 1  # never with windows of another length
    assert max(sizes[0], sizes[1], sizes[3]) >= 2  # different prefixes, one call
    service.scheduler.shutdown()
