"""The reference's parse_batch_config semantics: defaults, clamps and precedence."""

from __future__ import annotations

import pytest

from api.batch_config import parse_batch_config


@pytest.mark.parametrize(
    ("kwargs", "window", "max_window", "sources"),
    [
        ({}, 5.0, 10.0, ("default", "derived")),
        ({"env_window_sec": 3.0}, 3.0, 6.0, ("env", "derived")),
        ({"batch_window_sec": 2.0, "env_window_sec": 3.0}, 2.0, 4.0, ("explicit", "derived")),
        (
            {"batch_window_sec": 2.0, "max_batch_window_sec": 10.0},
            2.0,
            10.0,
            ("explicit", "explicit"),
        ),
        ({"profile": "balanced", "env_window_sec": 3.0}, 2.0, 4.0, ("profile", "derived")),
        ({"profile": "ultra_fast"}, 1.0, 2.0, ("profile", "derived")),
        ({"profile": "max_quality", "batch_window_sec": 3.0}, 3.0, 6.0, ("explicit", "derived")),
        # clamps: min to [0.5, 15]; max (default: the unclamped min * 2) to [min, 20]
        ({"batch_window_sec": 0.1}, 0.5, 0.5, ("explicit", "derived")),
        ({"batch_window_sec": 30.0}, 15.0, 20.0, ("explicit", "derived")),
        (
            {"batch_window_sec": 2.0, "max_batch_window_sec": 1.0},
            2.0,
            2.0,
            ("explicit", "explicit"),
        ),
        (
            {"batch_window_sec": 2.0, "max_batch_window_sec": 60.0},
            2.0,
            20.0,
            ("explicit", "explicit"),
        ),
        ({"env_window_sec": 0.2}, 0.5, 0.5, ("env", "derived")),
        ({"env_window_sec": 12.0}, 12.0, 20.0, ("env", "derived")),
    ],
)
def test_windows(kwargs: dict, window: float, max_window: float, sources: tuple) -> None:
    config = parse_batch_config(**kwargs)
    assert (config.batch_window_sec, config.max_batch_window_sec) == (window, max_window)
    assert (config.sources["batch_window_sec"], config.sources["max_batch_window_sec"]) == sources


@pytest.mark.parametrize(
    ("kwargs", "beam", "best_of", "sources"),
    [
        ({}, 5, 1, ("default", "default")),
        ({"profile": "max_quality"}, 5, 3, ("profile", "profile")),
        ({"profile": "ultra_fast"}, 3, 1, ("profile", "profile")),
        ({"profile": "ultra_fast", "beam_size": 5}, 5, 1, ("explicit", "profile")),
        ({"beam_size": 2, "best_of": 2}, 2, 2, ("explicit", "explicit")),
    ],
)
def test_decoding(kwargs: dict, beam: int, best_of: int, sources: tuple) -> None:
    config = parse_batch_config(**kwargs)
    assert (config.beam_size, config.best_of) == (beam, best_of)
    assert (config.sources["beam_size"], config.sources["best_of"]) == sources
