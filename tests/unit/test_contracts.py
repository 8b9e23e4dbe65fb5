"""The contracts package: its one form codec, the language check, word helpers, and that it
stays light (pydantic, numpy, structlog and the standard library only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from contracts.audio import AudioRejected, check_duration, float_to_pcm16, pcm16_to_float
from contracts.languages import LanguageNotAllowed, check_language
from contracts.words import (
    kept_before_loop,
    repeated_tail_start,
    same_word,
    shift_segment,
    shift_words,
)
from contracts.worker import (
    DecodeOptions,
    FormError,
    Priority,
    Segment,
    Word,
    from_form,
    options_from_form,
    to_form,
)

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ALLOWED = {"pydantic", "numpy", "structlog", "contracts", "__future__"}


def test_contracts_import_only_pydantic_numpy_structlog_and_the_standard_library() -> None:
    imported: set[str] = set()
    for path in CONTRACTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    outside = imported - ALLOWED - set(sys.stdlib_module_names)
    assert outside == set(), outside
    assert {"pydantic", "numpy", "structlog"} <= imported


def test_form_round_trip() -> None:
    options = DecodeOptions(
        language="pt", beam_size=3, temperature=0.0, initial_prompt="olá", word_timestamps=False
    )
    spans = [(0.0, 1.25), (2.5, 3.0)]
    form = to_form(options, Priority.partial, spans)
    assert form["priority"] == "partial" and form["word_timestamps"] == "false"
    request = from_form(form, ["pt", "en"])
    assert request.options == options
    assert request.priority is Priority.partial
    assert request.speech_spans == spans
    assert request.audio_format == "pcm_s16le" and request.sample_rate == 16000
    assert from_form(to_form(options), ["pt"]).speech_spans is None  # absent: the worker's VAD


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"beam_size": "0"}, "beam_size"),
        ({"beam_size": "abc"}, "beam_size"),
        ({"temperature": "2"}, "temperature"),
        ({"priority": "urgent"}, "priority"),
        ({"sample_rate": "100"}, "sample_rate"),
        ({"speech_spans": "[[1, 0.5]]"}, "speech_spans"),
        ({"speech_spans": "{"}, "speech_spans"),
        ({"language": "de"}, "'de' is not allowed"),
    ],
)
def test_form_errors_name_the_field(fields: dict[str, str], named: str) -> None:
    with pytest.raises(FormError) as error:
        from_form(fields, ["pt", "en"])
    assert named in error.value.message


def test_openai_names_and_unknown_fields() -> None:
    options = options_from_form(
        {"prompt": "Nomes: Ana", "language": "EN", "model": "whisper-1", "stream": "false"},
        ["pt", "en"],
    )
    assert options.initial_prompt == "Nomes: Ana" and options.language == "en"
    assert options_from_form({"language": "auto"}, ["pt"]).language is None


def test_language_check() -> None:
    assert check_language(" PT ", ["pt"]) == "pt"
    assert check_language("", ["pt"]) is None and check_language(None, ["pt"]) is None
    with pytest.raises(LanguageNotAllowed, match="allowed: pt, en"):
        check_language("fr", ["pt", "en"])


def test_pcm_conversions_and_duration_checks() -> None:
    audio = np.array([-1.5, -1.0, 0.0, 0.5, 1.0], dtype=np.float32)
    pcm = float_to_pcm16(audio)
    assert pcm.tolist() == [-32768, -32768, 0, 16384, 32767]
    assert pcm16_to_float(pcm.tobytes())[3] == 0.5
    check_duration(16000, 1.0)
    with pytest.raises(AudioRejected) as too_long:
        check_duration(16001 * 2, 2.0)
    assert too_long.value.status == 413
    with pytest.raises(AudioRejected) as empty:
        check_duration(0, 2.0)
    assert empty.value.status == 400


def test_words_on_a_timeline() -> None:
    words = [
        Word(word=" Olá", start=0.1, end=0.4, probability=0.9),
        Word(word=" ", start=0.4, end=0.4, probability=0.1),
    ]
    assert shift_words(words, 10.0) == [Word(word=" Olá", start=10.1, end=10.4, probability=0.9)]
    segment = Segment(
        id=3, start=0.0, end=0.5, text="Olá", avg_logprob=-0.2, no_speech_prob=0.1, words=words[:1]
    )
    moved = shift_segment(segment, 30.0, 7)
    assert (moved.id, moved.start, moved.end, moved.words[0].start) == (7, 30.0, 30.5, 30.1)
    assert same_word(" Olá,", "olá") and not same_word(",", ",")
    heard = ["um", "dois", "três", "quatro", "cinco", "seis"]
    loop = [*heard, *heard[:5]]
    assert repeated_tail_start(loop) == 6


def test_a_loop_through_the_forced_prefix_is_cut() -> None:
    said = [
        "coxinha",
        "de",
        "frango.",
        "Eu",
        "quero",
        "uma",
        "coxinha",
        "de",
        "frango.",
        "Eu",
        "quero",
        "uma",
    ]
    assert kept_before_loop("Eu quero uma", said) == 3  # "coxinha de frango."
    assert kept_before_loop(None, said) == 6  # alone: cut where its own words come again
    assert kept_before_loop("foi retomada", ["no", "congresso."]) == 2
