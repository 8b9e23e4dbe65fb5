"""Live windows through CTranslate2 directly, paying only for what is new.

faster-whisper always encodes 30 s and decodes a window's whole text. A live window is a few
seconds, much of it context whose words the gateway already sent. Here:
- the encoder hears the window's own frames plus `encoder_pad_sec` of padding (rounded up to
  the next whole second), not 30 s: measured on the long-form material (docs/benchmarks.md),
  3 s loses nothing against 30 s once the words sent are the prefix, 1 s loses 5 points;
- the words already sent (`prefix`) are forced through the decoder instead of generated again,
  and only the words after them come back;
- the decode is timestamp-free and capped by the audio's length (the whole window's text,
  prefix included, within TOKENS_PER_SEC); word times come from the alignment, as faster-whisper
  computes them;
- a word far from every speech span was read into the silence or the padding after the speech,
  and words that say the prefix again (a loop through it) are dropped.

One function for one window or a batch (`decode_windows`): one feature pass, one `encode`, one
`generate`, one `align` for all. A window's encoder input length depends on its own audio only
(`input_frames`), and a batch only holds windows of the same length (the batcher's key), so its
text does not depend on its batch mates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from asr.batch_decode import RawSegment, RawWord
from asr.direct_pass import DirectPass
from asr.vad import SpeechSpan
from contracts.audio import SAMPLE_RATE
from contracts.words import kept_before_loop
from contracts.worker import DecodeOptions

FRAME_SAMPLES = 160
FRAMES_PER_SEC = 100
FULL_FRAMES = 3000  # the encoder's 30 s
TOKENS_PER_SEC = 8  # generous for speech (3-5 tokens/s); stops a decoder that loops
SPEECH_REACH_SEC = 0.3  # a word this close to speech counts as heard in it
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def applies(options: DecodeOptions, samples: int) -> bool:
    """Whether a request takes this path: it asked for it, with what the path needs."""
    return (
        options.encoder_pad_sec is not None
        and options.language is not None
        and options.temperature == 0.0
        and options.task == "transcribe"
        and not options.vad_filter
        and samples <= FULL_FRAMES * FRAME_SAMPLES
    )


def input_frames(samples: int, pad_sec: float) -> int:
    """The encoder input of a window: its frames and the padding, up to a whole second."""
    frames = samples // FRAME_SAMPLES + round(pad_sec * FRAMES_PER_SEC)
    return min(FULL_FRAMES, -(-frames // FRAMES_PER_SEC) * FRAMES_PER_SEC)


def decode_windows(
    direct: DirectPass,
    audios: Sequence[np.ndarray],
    options: Sequence[DecodeOptions],
    spans: Sequence[list[SpeechSpan]],
) -> list[list[RawSegment]]:
    """The words after each window's `prefix` (one segment, or none). The windows share their
    language, beam, padding and input length; prefix and prompt are their own."""
    first = options[0]
    assert first.encoder_pad_sec is not None and first.language is not None
    lengths = {input_frames(a.size, first.encoder_pad_sec) for a in audios}
    assert len(lengths) == 1, "a batch holds windows of one encoder input length"
    total = lengths.pop()
    feats, counts = direct.features(audios)
    frames = [n - 1 for n in counts]  # the extractor's extra frame is padding
    for i, n in enumerate(frames):
        # the padding as whisper was trained with it: silence, which the extractor's clamp puts
        # 8 log10 units (2 after its scaling) under the window's loudest bin
        feats[i, :, min(n, total) : total] = feats[i, :, :n].max() - 2.0
    encoded = direct.encode(np.ascontiguousarray(feats[:, :, :total]))
    tokenizer = direct.tokenizer(first.language)
    prefixes = [_prefix_tokens(tokenizer, o) for o in options]
    prompts = [_prompt(direct, tokenizer, o) for o in options]
    budgets = [
        max(4, int(a.size / SAMPLE_RATE * TOKENS_PER_SEC) + 10 - len(p))
        for a, p in zip(audios, prefixes, strict=True)
    ]
    results = direct.whisper.model.generate(
        encoded,
        prompts,
        beam_size=first.beam_size,
        patience=1.0,
        length_penalty=1.0,
        max_length=min(
            direct.whisper.max_length,
            max(len(p) + b for p, b in zip(prompts, budgets, strict=True)),
        ),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=direct.suppressed(first.language),
    )
    generated = []
    for result, prefix, budget in zip(results, prefixes, budgets, strict=True):
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if tokens[: len(prefix)] == prefix:  # CTranslate2 returns the prefix too
            tokens = tokens[len(prefix) :]
        generated.append(tokens[:budget])  # the batch shares one max_length
    aligned = (
        direct.align(
            encoded,
            first.language,
            [p + t for p, t in zip(prefixes, generated, strict=True)],
            frames,
        )
        if first.word_timestamps
        else [[] for _ in audios]
    )
    return [
        _segments(tokenizer, a.size / SAMPLE_RATE, o, p, t, r, al, s)
        for a, o, p, t, r, al, s in zip(
            audios, options, prefixes, generated, results, aligned, spans, strict=True
        )
    ]


def _prefix_tokens(tokenizer: Any, options: DecodeOptions) -> list[int]:
    prefix = options.prefix.strip() if options.prefix else ""
    return tokenizer.encode(" " + prefix) if prefix else []


def _prompt(direct: DirectPass, tokenizer: Any, options: DecodeOptions) -> list[int]:
    previous = (
        tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    )
    prompt = direct.whisper.get_prompt(
        tokenizer,
        previous,
        without_timestamps=True,
        prefix=options.prefix.strip() if options.prefix else None,
        hotwords=options.hotwords or None,
    )
    return cast(list[int], prompt)  # faster-whisper has no type hints


def _segments(
    tokenizer: Any,
    duration: float,
    options: DecodeOptions,
    prefix: list[int],
    tokens: list[int],
    result: Any,
    aligned: list[dict[str, Any]],
    spans: list[SpeechSpan],
) -> list[RawSegment]:
    from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

    if not tokens:
        return []
    if options.word_timestamps:
        merge_punctuations(aligned, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        words: list[RawWord] = []
        consumed = 0
        for item in aligned:
            new = consumed >= len(prefix)
            consumed += len(item["tokens"])
            if new and item["word"] and near_speech(item["start"], item["end"], spans):
                words.append(
                    RawWord(
                        word=item["word"],
                        start=round(min(max(float(item["start"]), 0.0), duration), 3),
                        end=round(min(max(float(item["end"]), 0.0), duration), 3),
                        probability=float(item["probability"]),
                    )
                )
        # forced through what it already heard, a decoder may say it all again
        words = words[: kept_before_loop(options.prefix, [w.word for w in words])]
        if not words:
            return []
        text, start, end = "".join(w.word for w in words), words[0].start, words[-1].end
    else:
        words, text, start, end = [], tokenizer.decode(tokens), 0.0, duration
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    return [
        RawSegment(
            start=start,
            end=end,
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=get_compression_ratio(text.strip()),
            words=words,
        )
    ]


def near_speech(start: float, end: float, spans: list[SpeechSpan]) -> bool:
    return any(start < s.end + SPEECH_REACH_SEC and end > s.start - SPEECH_REACH_SEC for s in spans)
