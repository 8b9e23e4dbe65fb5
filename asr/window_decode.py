"""A live window through CTranslate2 directly, paying only for what is new.

faster-whisper always encodes 30 s and decodes the window's whole text. A live window is a few
seconds, much of it context whose words the gateway already sent. Here:
- the encoder hears the window's own frames plus `encoder_pad_sec` of padding (measured on the
  long-form material, docs/benchmarks.md: 3 s loses nothing against 30 s once the words sent are
  the prefix; 1 s loses 5 points);
- the words already sent (`prefix`) are forced through the decoder instead of generated again,
  and only the words after them come back;
- the decode is timestamp-free and capped by the audio's length (the whole window's text,
  prefix included, within TOKENS_PER_SEC); word times come from the alignment, as faster-whisper
  computes them;
- a word far from every speech span was read into the silence or the padding after the speech,
  and words that say the prefix again (a loop through it) are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.batch_decode import RawSegment, RawWord
from asr.vad import SpeechSpan
from contracts.audio import SAMPLE_RATE
from contracts.words import kept_before_loop
from contracts.worker import DecodeOptions

FRAME_SAMPLES = 160
FULL_FRAMES = 3000  # the encoder's 30 s
TOKENS_PER_SEC = 8  # generous for speech (3-5 tokens/s); stops a decoder that loops
SPEECH_REACH_SEC = 0.3  # a word this close to speech counts as heard in it
MAX_COMPRESSION_RATIO = 2.4
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


def decode_window(
    fw: Any, audio: np.ndarray, options: DecodeOptions, spans: list[SpeechSpan]
) -> list[RawSegment]:
    """The words after `options.prefix` in `audio` (<= 30 s), as one segment (or none)."""
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import (
        get_compression_ratio,
        get_suppressed_tokens,
        merge_punctuations,
    )

    assert options.encoder_pad_sec is not None and options.language is not None
    duration = audio.size / SAMPLE_RATE
    frames = audio.size // FRAME_SAMPLES
    pad = round(options.encoder_pad_sec * SAMPLE_RATE / FRAME_SAMPLES)
    total = min(FULL_FRAMES, frames + pad)
    # padding with zeros, as faster-whisper does (the normalisation floor is the audio's own)
    features = fw.feature_extractor(audio, padding=(total - frames + 1) * FRAME_SAMPLES)
    encoded = fw.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :total])),
        to_cpu=False,
    )
    tokenizer = Tokenizer(
        fw.hf_tokenizer, fw.model.is_multilingual, task="transcribe", language=options.language
    )
    previous = (
        tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    )
    prefix = options.prefix.strip() if options.prefix else None
    prefix_tokens = tokenizer.encode(" " + prefix) if prefix else []
    prompt = fw.get_prompt(
        tokenizer,
        previous,
        without_timestamps=True,
        prefix=prefix,
        hotwords=options.hotwords or None,
    )
    # the whole window's text, prefix included, fits the budget: a decoder forced through all
    # there is to say otherwise goes on inventing
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
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    if tokens[: len(prefix_tokens)] == prefix_tokens:  # CTranslate2 returns the prefix too
        tokens = tokens[len(prefix_tokens) :]
    if not tokens:
        return []
    words: list[RawWord] = []
    if options.word_timestamps:
        aligned = fw.find_alignment(tokenizer, [prefix_tokens + tokens], encoded, frames)[0]
        merge_punctuations(aligned, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        consumed = 0
        for item in aligned:
            new = consumed >= len(prefix_tokens)
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
        words = words[: kept_before_loop(prefix, [w.word for w in words])]
        if not words:
            return []
        text = "".join(w.word for w in words)
        start, end = words[0].start, words[-1].end
    else:
        text, start, end = tokenizer.decode(tokens), 0.0, duration
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
