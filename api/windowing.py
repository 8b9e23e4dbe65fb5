"""Where to cut the next window: at a pause, judged relative to the speaker's level.

All positions are 10 ms frames of the pending audio. Once `min` frames are pending we look up
to `search` frames further for a pause (a run of quiet frames at least `pause` long) and cut
`pause / 2` into it, so no word is split. Not in its middle: while the pause goes on its end is
not known yet, and a cut that depended on how much audio had arrived when we looked would make
the windows (and so the text) depend on network and worker timing. With no pause by then, we
cut at the quietest 100 ms of that stretch. When the pool is behind (more than min + search
already pending) the window grows towards `max` and we prefer the last pause, so the session
catches up in fewer calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SAMPLES = 160  # 10 ms at 16 kHz
SILENCE_DB = -100.0


@dataclass(frozen=True)
class CutPlan:
    min_frames: int
    search_frames: int
    max_frames: int
    pause_frames: int


def frame_db(samples: np.ndarray) -> np.ndarray:
    """Energy in dBFS of each complete 10 ms frame of int16 samples."""
    n = samples.size // FRAME_SAMPLES
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = samples[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).astype(np.float32) / 32768.0
    power = np.einsum("ij,ij->i", frames, frames) / FRAME_SAMPLES
    return np.maximum(10.0 * np.log10(power + 1e-10), SILENCE_DB).astype(np.float32)


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


def choose_cut(db: np.ndarray, threshold: float, plan: CutPlan) -> int | None:
    """Frames to cut from the start of the pending audio (`db`), or None to wait for more."""
    pending = db.size
    if pending < plan.min_frames:
        return None
    behind = pending > plan.min_frames + plan.search_frames
    high = min(pending, plan.max_frames if behind else plan.min_frames + plan.search_frames)
    region = db[plan.min_frames : high]
    runs = [
        (start, end)
        for start, end in quiet_runs(region <= threshold)
        if end - start >= plan.pause_frames
    ]
    if runs:
        start, _ = runs[-1] if behind else runs[0]
        return plan.min_frames + start + plan.pause_frames // 2
    if pending >= plan.min_frames + plan.search_frames or pending >= plan.max_frames:
        return plan.min_frames + quietest_point(region)
    return None


def quietest_point(region: np.ndarray, width: int = 10) -> int:
    """Middle of the quietest `width` frames (100 ms) of region."""
    if region.size <= width:
        return region.size // 2
    means = np.convolve(region, np.ones(width) / width, mode="valid")
    return int(np.argmin(means)) + width // 2
