"""Experiment: one window through CTranslate2 directly, paying only for what is new.

- the encoder hears the window's own frames plus `pad_frames` of padding, not 30 s;
- text already committed inside the window is the decoder's forced prefix (one forward pass
  instead of generating it again), and only the words after it come back;
- the decode is capped by the audio's length (a short input otherwise invites loops).

Returns a TranscriptionResponse like the worker's, so the session core takes it unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from contracts.audio import SAMPLE_RATE
from contracts.worker import DecodeOptions, Segment, Timing, TranscriptionResponse, Word

FULL_FRAMES = 3000
VERSION = 2  # part of the replay's cache key: bump when the decode changes
TOKENS_PER_SEC = 8  # generous for speech (~3-4 text tokens/s); stops a looping decoder
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0


def decode(
    fw: Any,
    audio: np.ndarray,
    options: DecodeOptions,
    prefix: str | None,
    pad_frames: int | None,
    timestamps: bool = False,
    speech: list[tuple[float, float]] | None = None,
) -> TranscriptionResponse:
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    started = time.perf_counter()
    duration = audio.size / SAMPLE_RATE
    frames = audio.size // 160
    total = FULL_FRAMES if pad_frames is None else min(FULL_FRAMES, frames + pad_frames)
    feats = fw.feature_extractor(audio, padding=FULL_FRAMES * 160)[:, :total]
    encoded = fw.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None])), to_cpu=False
    )
    tokenizer = Tokenizer(fw.hf_tokenizer, True, task="transcribe", language=options.language)
    previous = (
        tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    )
    prompt = fw.get_prompt(tokenizer, previous, without_timestamps=not timestamps, prefix=prefix)
    prefix_tokens = tokenizer.encode(" " + prefix.strip()) if prefix else []
    # the whole window's text, prefix included, fits the budget: after a long prefix little
    # may follow (a decoder forced through all there is to say otherwise invents more)
    budget = max(4, int(duration * TOKENS_PER_SEC) + 10 - len(prefix_tokens))
    result = fw.model.generate(
        encoded,
        [prompt],
        beam_size=options.beam_size,
        patience=1.0,
        length_penalty=1.0,
        max_length=min(fw.max_length, len(prompt) + budget),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
        max_initial_timestamp_index=50,
    )[0]
    generated = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    # CTranslate2 returns the forced prefix with what it generated after it
    if generated[: len(prefix_tokens)] == prefix_tokens:
        generated = generated[len(prefix_tokens) :]
    text_tokens = prefix_tokens + generated
    words: list[Word] = []
    if text_tokens and options.word_timestamps:
        aligned = fw.find_alignment(tokenizer, [text_tokens], encoded, frames)[0]
        from faster_whisper.transcribe import merge_punctuations

        merge_punctuations(aligned, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        consumed = 0
        for item in aligned:
            is_new = consumed >= len(prefix_tokens)
            consumed += len(item["tokens"])
            if not item["word"] or not is_new:
                continue
            words.append(
                Word(
                    word=item["word"],
                    start=round(min(max(float(item["start"]), 0.0), duration), 3),
                    end=round(min(max(float(item["end"]), 0.0), duration), 3),
                    probability=round(float(item["probability"]), 4),
                )
            )
    if speech is not None:
        # a word far from any speech was read into the silence (or the padding) after it
        words = [w for w in words if any(w.start < b + 0.3 and w.end > a - 0.3 for a, b in speech)]
    text = tokenizer.decode(generated).strip()
    avg_logprob = result.scores[0] * len(generated) / (len(generated) + 1) if generated else -9
    silent = result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB
    looping = get_compression_ratio(text) > 2.4 if text else False
    segments = []
    if text and words and not silent and not looping:
        segments.append(
            Segment(
                id=0,
                start=words[0].start,
                end=words[-1].end,
                text=text,
                avg_logprob=round(avg_logprob, 4),
                no_speech_prob=round(result.no_speech_prob, 4),
                words=words,
            )
        )
    return TranscriptionResponse(
        text=" ".join(s.text for s in segments),
        language=options.language or "",
        language_probability=1.0,
        duration_sec=duration,
        speech_sec=0.0,
        segments=segments,
        timing=Timing(inference_ms=round((time.perf_counter() - started) * 1000, 2)),
    )
