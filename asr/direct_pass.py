"""A batch of windows through CTranslate2 directly: mel features for the batch in one pass, one
`encode`, one `generate` and one `align` for all of its encoder inputs.

This is the model work of the worker's batched path (asr/batch_decode.py turns its results
into segments and words) and of the benchmark's ceiling (bench/direct.py times it alone).
What may differ from window to window lives in its `ItemPlan`; today that is where its features
sit (encoder input, first frame) and how many frames it has. A per-window encoder input length
or prompt/prefix tokens would be further fields there, read where the inputs and prompts are
built below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from asr.features import log_mel_batch
from asr.stage_clock import StageClock
from contracts.worker import DecodeOptions

N_FRAMES = 3000  # 30 s of 10 ms feature frames: the encoder's fixed input
TAIL_MARGIN_FRAMES = 100  # a packed input keeps 1 s of padding after its last window
MAX_INITIAL_TIMESTAMP_INDEX = 50  # faster-whisper's max_initial_timestamp=1.0 s
MEDIAN_FILTER_WIDTH = 7  # faster-whisper's, for the alignment


@dataclass(frozen=True)
class ItemPlan:
    """One window's place in a pass."""

    window: int  # its index in the batch
    input: int  # the encoder input holding it
    offset: int  # its first frame on that input
    frames: int  # its own feature frames (the audio's, without the extractor's extra one)

    @property
    def end(self) -> int:
        return self.offset + self.frames


@dataclass(frozen=True)
class PassPlan:
    """Every window of a batch placed on the pass's encoder inputs."""

    items: tuple[ItemPlan, ...]
    inputs: int

    def on_input(self, index: int) -> list[ItemPlan]:
        return [item for item in self.items if item.input == index]

    def input_end(self, index: int) -> int:
        """The last frame any window fills on that input (what the alignment may use)."""
        return max(item.end for item in self.on_input(index))

    @property
    def shared(self) -> list[int]:
        """Windows that share an input with another window."""
        return [i.window for i in self.items if len(self.on_input(i.input)) > 1]


def plan_pass(
    frames: Sequence[int], pack: bool, gap: int, max_per_input: int, capacity: int = N_FRAMES
) -> PassPlan:
    """Place windows (feature frames each) on encoder inputs, first fit in arrival order.
    Without packing every window gets an input of its own, in order."""
    items: list[ItemPlan] = []
    ends: list[int] = []
    counts: list[int] = []
    limit = capacity - TAIL_MARGIN_FRAMES
    for window, n in enumerate(frames):
        for slot, end in enumerate(ends):
            if pack and counts[slot] < max_per_input and end + gap + n <= limit:
                items.append(ItemPlan(window, slot, end + gap, n))
                ends[slot] = end + gap + n
                counts[slot] += 1
                break
        else:
            items.append(ItemPlan(window, len(ends), 0, n))
            ends.append(n)
            counts.append(1)
    return PassPlan(tuple(items), len(ends))


class DirectPass:
    """The model calls of a batch, on a faster_whisper.WhisperModel's CTranslate2 model (its
    `model` may be asr.stage_clock's timed proxy; features are timed here)."""

    def __init__(self, whisper: Any, clock: StageClock | None = None) -> None:
        self.whisper = whisper
        self.clock = clock or StageClock()
        self._tokenizers: dict[str, Any] = {}
        self._suppressed: dict[str, list[int]] = {}

    def tokenizer(self, language: str) -> Any:
        """One tokenizer per language, built once (its token sets are cached on it)."""
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.whisper.hf_tokenizer,
                self.whisper.model.is_multilingual,
                task="transcribe",
                language=language,
            )
        return self._tokenizers[language]

    def suppressed(self, language: str) -> list[int]:
        from faster_whisper.transcribe import get_suppressed_tokens

        if language not in self._suppressed:
            tokens = get_suppressed_tokens(self.tokenizer(language), [-1])
            self._suppressed[language] = list(tokens)
        return self._suppressed[language]

    def features(self, audios: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        """([B, n_mels, N_FRAMES] features, each window's own frames) in one pass."""
        with self.clock.measure("features"):
            feats, counts = log_mel_batch(self.whisper.feature_extractor, list(audios), N_FRAMES)
        # the extractor's output has one frame past the audio's end (its padding)
        return feats, [min(n - 1, N_FRAMES) for n in counts]

    def inputs(self, plan: PassPlan, feats: np.ndarray, gap_fill: str = "floor") -> np.ndarray:
        """The encoder inputs [plan.inputs, n_mels, N_FRAMES]. Unpacked, the features are
        already the inputs (zeros after each window); packed windows are copied side by side,
        the gaps filled like digital silence ("floor") or like padding ("pad": zeros)."""
        if plan.inputs == len(plan.items) and all(
            item.input == item.window and item.offset == 0 for item in plan.items
        ):
            for item in plan.items:
                if item.frames < N_FRAMES:  # the extractor's extra frame is not the window's
                    feats[item.window, :, item.frames] = 0.0
            return feats
        out = np.zeros((plan.inputs, feats.shape[1], N_FRAMES), dtype=np.float32)
        for k in range(plan.inputs):
            previous_end = 0
            for item in plan.on_input(k):
                piece = feats[item.window, :, : item.frames]
                if item.offset > previous_end and gap_fill == "floor":
                    # what digital silence looks like after this window's own normalisation
                    out[k, :, previous_end : item.offset] = piece.min()
                out[k, :, item.offset : item.end] = piece
                previous_end = item.end
        return out

    def encode(self, inputs: np.ndarray) -> Any:
        """One encoder call for every input (kept on the device the model runs on)."""
        return self.whisper.encode(inputs)

    def prompts(self, plan: PassPlan, options: DecodeOptions) -> list[list[int]]:
        """The decoder prompt of each input (the batch shares its options, so one prompt)."""
        assert options.language is not None
        tokenizer = self.tokenizer(options.language)
        previous = (
            tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        )
        prompt = self.whisper.get_prompt(tokenizer, previous, hotwords=options.hotwords or None)
        return [prompt] * plan.inputs

    def generate(self, encoded: Any, prompts: list[list[int]], options: DecodeOptions) -> list[Any]:
        """One `generate` for every input, beam search with faster-whisper's settings."""
        assert options.language is not None
        results = self.whisper.model.generate(
            encoded,
            prompts,
            beam_size=options.beam_size,
            patience=1.0,
            length_penalty=1.0,
            max_length=self.whisper.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppressed(options.language),
            max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        )
        return cast(list[Any], results)  # ctranslate2 has no type hints: WhisperGenerationResult

    def align(
        self, encoded: Any, language: str, text_tokens: list[list[int]], num_frames: list[int]
    ) -> list[list[dict[str, Any]]]:
        """Word timings of every input from one `align` call (faster-whisper's find_alignment:
        inputs without text get none)."""
        alignments = self.whisper.find_alignment(
            self.tokenizer(language), text_tokens, encoded, num_frames, MEDIAN_FILTER_WIDTH
        )
        return cast(list[list[dict[str, Any]]], alignments)  # faster-whisper has no type hints
