"""Effective window and decoding settings of a session (the reference's `parse_batch_config`).

Precedence (recorded per value in `sources`): explicit field > profile > ASR_BATCH_WINDOW_SEC >
5.0 for the window; explicit > profile > 5/1 for beam_size/best_of. Then the reference clamps:
min_window to [0.5, 15.0]; max_window (default min_window * 2) to [min_window, 20.0].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ProfileName = Literal["max_quality", "balanced", "responsive", "ultra_fast"]
Source = Literal["explicit", "profile", "env", "default", "derived"]

MIN_WINDOW_RANGE = (0.5, 15.0)
MAX_WINDOW_LIMIT = 20.0
DEFAULT_WINDOW_SEC = 5.0
DEFAULT_BEAM_SIZE = 5
DEFAULT_BEST_OF = 1


@dataclass(frozen=True)
class Profile:
    batch_window_sec: float
    beam_size: int
    best_of: int


PROFILES: dict[str, Profile] = {
    "max_quality": Profile(5.0, 5, 3),
    "balanced": Profile(2.0, 5, 1),
    "responsive": Profile(1.5, 5, 1),
    "ultra_fast": Profile(1.0, 3, 1),
}


@dataclass(frozen=True)
class BatchConfig:
    batch_window_sec: float
    max_batch_window_sec: float
    beam_size: int
    best_of: int
    sources: dict[str, Source] = field(default_factory=dict)


def parse_batch_config(
    batch_window_sec: float | None = None,
    max_batch_window_sec: float | None = None,
    beam_size: int | None = None,
    best_of: int | None = None,
    profile: str | None = None,
    env_window_sec: float | None = None,
) -> BatchConfig:
    preset = PROFILES.get(profile) if profile else None
    sources: dict[str, Source] = {}

    if batch_window_sec is not None:
        min_window, sources["batch_window_sec"] = float(batch_window_sec), "explicit"
    elif preset is not None:
        min_window, sources["batch_window_sec"] = preset.batch_window_sec, "profile"
    elif env_window_sec is not None:
        min_window, sources["batch_window_sec"] = float(env_window_sec), "env"
    else:
        min_window, sources["batch_window_sec"] = DEFAULT_WINDOW_SEC, "default"

    # as in the reference: the default maximum doubles the (unclamped) minimum
    if max_batch_window_sec is not None:
        max_window, sources["max_batch_window_sec"] = float(max_batch_window_sec), "explicit"
    else:
        max_window, sources["max_batch_window_sec"] = min_window * 2, "derived"

    min_window = max(MIN_WINDOW_RANGE[0], min(min_window, MIN_WINDOW_RANGE[1]))
    max_window = max(min_window, min(max_window, MAX_WINDOW_LIMIT))

    profile_beam = preset.beam_size if preset is not None else None
    profile_best = preset.best_of if preset is not None else None
    beam, sources["beam_size"] = _pick(beam_size, profile_beam, DEFAULT_BEAM_SIZE)
    best, sources["best_of"] = _pick(best_of, profile_best, DEFAULT_BEST_OF)
    return BatchConfig(min_window, max_window, beam, best, sources)


def _pick(explicit: int | None, from_profile: int | None, default: int) -> tuple[int, Source]:
    if explicit is not None:
        return explicit, "explicit"
    if from_profile:
        return from_profile, "profile"
    return default, "default"
