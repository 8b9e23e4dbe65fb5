"""The long-form material streaming is judged on (issue 16, docs/benchmarks.md), assembled at
run time from the dev set, the same for the real-time benchmark and the replay:

- `pt-longform-dev` as it is (85 s, its own reference);
- the first ~120 s of each read recording (`cuttledoc-pt-tts-adam`, `-raquel`), cut in the first
  pause after 120 s. Their reference covers the whole recording; the excerpt's is the part of it
  spoken before the cut, found by aligning the reference with a word-timestamped whole-file
  transcription of the recording (only the cut position comes from the model);
- `en-longform`: the English clips one after another at their own edges (their own leading and
  trailing room sound, no digital silence added), each brought to the same speech level first
  (the FLEURS en clips peak at -45 to -49 dBFS and jfk at 0: joined as they are, whisper's
  per-30 s normalisation drowns the quiet ones, and the whole-file baseline would be no
  baseline). References joined in the same order.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import jiwer
import numpy as np

from bench.scoring import Clip, normalize

SAMPLE_RATE = 16000
EXCERPT_SEC = 120.0
MIN_CUT_GAP_SEC = 0.3  # the excerpt ends in the first pause this long after EXCERPT_SEC
SPEECH_LEVEL_DBFS = -26.0  # RMS of the loudest 10% of 30 ms frames, after levelling
READ_RECORDINGS = ("cuttledoc-pt-tts-adam", "cuttledoc-pt-tts-raquel")
TimedWord = tuple[str, float, float]  # (word, start, end) in seconds
WordTimer = Callable[[Clip], Sequence[TimedWord]]  # a whole-file transcription's words


@dataclass(frozen=True)
class LongClip:
    id: str
    language: str
    audio: np.ndarray  # float32, 16 kHz mono
    reference: str

    @property
    def duration_sec(self) -> float:
        return self.audio.size / SAMPLE_RATE

    def pcm16(self) -> bytes:
        pcm = (np.clip(self.audio, -1.0, 1.0) * 32767).astype("<i2")  # numpy types this Any
        return cast(bytes, pcm.tobytes())


def read_wav(clip: Clip) -> np.ndarray:
    with wave.open(str(clip.path), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def longform_clips(manifest: dict[str, Clip], word_timer: WordTimer) -> list[LongClip]:
    dev = manifest["pt-longform-dev"]
    clips = [LongClip(dev.id, dev.language, read_wav(dev), dev.reference_text)]
    for clip_id in READ_RECORDINGS:
        clip = manifest[clip_id]
        clips.append(excerpt(clip, read_wav(clip), word_timer(clip)))
    clips.append(english_longform(manifest))
    return clips


def excerpt(clip: Clip, audio: np.ndarray, words: Sequence[TimedWord]) -> LongClip:
    cut = cut_after(words, EXCERPT_SEC)
    spoken = [w for w, _, end in words if end <= cut]
    reference = reference_prefix(clip.reference_text, " ".join(spoken))
    return LongClip(
        f"{clip.id}-{round(EXCERPT_SEC)}s",
        clip.language,
        audio[: int(cut * SAMPLE_RATE)],
        reference,
    )


def cut_after(words: Sequence[TimedWord], at_sec: float) -> float:
    """The middle of the first pause of MIN_CUT_GAP_SEC between words ending after `at_sec`."""
    for (_, _, end), (_, start, _) in itertools.pairwise(words):
        if end >= at_sec and start - end >= MIN_CUT_GAP_SEC:
            return (end + start) / 2
    raise ValueError(f"no pause of {MIN_CUT_GAP_SEC} s after {at_sec} s")


def reference_prefix(reference: str, spoken: str) -> str:
    """The words of `reference` that the transcript of its beginning (`spoken`) covers: the
    reference up to the word aligned with the transcript's last word."""
    ref_words = reference.split()
    ref_norm = [normalize(w) for w in ref_words]
    # align on normalised words, one reference word per token (punctuation-only words vanish)
    keep = [i for i, w in enumerate(ref_norm) if w]
    hyp = normalize(spoken)
    ref_text = " ".join(ref_norm[i].replace(" ", "") for i in keep)
    out = jiwer.process_words(ref_text, hyp)
    last_ref = -1
    for chunk in out.alignments[0]:
        if chunk.type in ("equal", "substitute"):
            last_ref = chunk.ref_end_idx - 1
    if last_ref < 0:
        return ""
    return " ".join(ref_words[: keep[last_ref] + 1])


def english_longform(manifest: dict[str, Clip]) -> LongClip:
    english = [c for c in manifest.values() if c.language == "en" and c.duration_s <= 20.0]
    audio = np.concatenate([level(read_wav(c)) for c in english])
    return LongClip("en-longform", "en", audio, " ".join(c.reference_text for c in english))


def level(audio: np.ndarray) -> np.ndarray:
    """The clip at SPEECH_LEVEL_DBFS: its loudest frames (speech) set the gain, so the room
    sound between words keeps its own level relative to the voice."""
    frame = 480
    n = audio.size // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.sort(rms)[-max(1, n // 10) :]
    speech_db = 20 * np.log10(float(np.mean(loud)))
    gain = 10 ** ((SPEECH_LEVEL_DBFS - speech_db) / 20)
    return cast(np.ndarray, np.clip(audio * gain, -1.0, 1.0).astype(np.float32))  # numpy: Any
