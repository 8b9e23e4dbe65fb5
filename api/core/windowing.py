"""Where to cut the next window: at a pause, judged relative to the speaker's level.

All positions are 10 ms frames of the pending audio. Once `min` frames are pending we look up
to `search` frames further for a pause (a run of quiet frames at least `pause` long) and cut
`pause / 2` into it, so no word is split. Not in its middle: while the pause goes on its end is
not known yet, and a cut that depended on how much audio had arrived when we looked would make
the windows (and so the text) depend on network and worker timing. With no pause by then, we
cut at the quietest 100 ms of that stretch. Every one of these decisions is a function of the
audio alone: given more audio than it needs, `choose_cut` decides the same.

Only when the pool is behind (slower than real time: the caller says so) may a window grow
towards `max`, preferring the last pause, so the session catches up in fewer calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

FRAME_SAMPLES = 160  # 10 ms at 16 kHz
SILENCE_DB = -100.0


@dataclass(frozen=True)
class Cut:
    at: int  # frames from the start of the pending audio
    needed: int  # frames of pending audio this decision needed (when it was known)


@dataclass(frozen=True)
class CutPlan:
    min_frames: int
    search_frames: int
    max_frames: int
    pause_frames: int


def frame_db(samples: np.ndarray) -> np.ndarray:
    """Energy in dBFS of each complete 10 ms frame of int16 samples (in float64, so a frame's
    level does not depend on how many frames were computed with it)."""
    n = samples.size // FRAME_SAMPLES
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = samples[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).astype(np.float64) / 32768.0
    power = np.einsum("ij,ij->i", frames, frames) / FRAME_SAMPLES
    levels = np.maximum(10.0 * np.log10(power + 1e-10), SILENCE_DB)  # numpy types this Any
    return cast(np.ndarray, levels.astype(np.float32))


def quiet_threshold(recent_db: np.ndarray) -> float:
    """A frame is quiet below this: well under the speaker's level, a little over the floor."""
    if recent_db.size == 0:
        return SILENCE_DB
    level = float(np.percentile(recent_db, 95))
    floor = float(np.percentile(recent_db, 5))
    return min(level - 10.0, max(level - 25.0, floor + 6.0))


def quiet_runs(quiet: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True values."""
    if quiet.size == 0:
        return []
    padded = np.concatenate(([False], quiet, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def choose_cut(db: np.ndarray, threshold: float, plan: CutPlan, behind: bool = False) -> Cut | None:
    """Where to cut the pending audio (`db`), or None to wait for more."""
    pending = db.size
    if pending < plan.min_frames:
        return None
    search_end = min(plan.min_frames + plan.search_frames, plan.max_frames)
    behind = behind and pending > search_end
    high = min(pending, plan.max_frames) if behind else min(pending, search_end)
    region = db[plan.min_frames : high]
    runs = [
        (start, end)
        for start, end in quiet_runs(region <= threshold)
        if end - start >= plan.pause_frames
    ]
    if behind:
        start = runs[-1][0] if runs else None
        at = plan.min_frames + (
            quietest_point(region) if start is None else start + plan.pause_frames // 2
        )
        return Cut(at, pending)
    if runs:
        start = runs[0][0]
        return Cut(
            plan.min_frames + start + plan.pause_frames // 2,
            plan.min_frames + start + plan.pause_frames,
        )
    if pending >= search_end:
        return Cut(plan.min_frames + quietest_point(region), search_end)
    return None


def quietest_point(region: np.ndarray, width: int = 10) -> int:
    """Middle of the quietest `width` frames (100 ms) of region."""
    if region.size <= width:
        return region.size // 2
    means = np.convolve(region, np.ones(width) / width, mode="valid")
    return int(np.argmin(means)) + width // 2
