"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    quality = result.get("quality") or {}
    return [r for r in quality.get("rows", []) if r.get("available") and r["final_latency"]["n"]]


def latency_vs_wer(result: dict[str, Any], path: Path) -> Path | None:
    rows = _rows(result)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for row in rows:
        lat = row["final_latency"]
        x, wer = lat["p50"], 100 * row["wer"]
        ax.errorbar(x, wer, xerr=[[0], [lat["p95"] - x]], fmt="o", capsize=3, label=row["name"])
        ax.annotate(row["name"], (x, wer), textcoords="offset points", xytext=(5, 5), fontsize=8)
    whole = result["quality"].get("whole_file", {}).get("wer")
    if whole is not None:
        ax.axhline(100 * whole, color="grey", linestyle="--", linewidth=1, label="whole file")
    ax.set_xlabel("final word latency, s (dot p50, bar to p95)")
    ax.set_ylabel("WER vs reference, %")
    ax.set_ylim(bottom=0)
    ax.set_title("Latency vs WER per profile")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _word_values(row: dict[str, Any], key: str) -> np.ndarray:
    return np.sort(np.asarray([v for s in row.get("sessions", []) for v in s[key]], dtype=float))


def latency_cdf(result: dict[str, Any], path: Path) -> Path | None:
    rows = [r for r in _rows(result) if _word_values(r, "final_latency").size]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for row in rows:
        for key, style, suffix in (("final_latency", "-", ""), ("first_latency", ":", " (first)")):
            if key == "first_latency" and not row.get("partials"):
                continue  # without partials first sight is the final transcript
            values = _word_values(row, key)
            fraction = np.arange(1, values.size + 1) / values.size
            ax.step(values, fraction, where="post", linestyle=style, label=row["name"] + suffix)
    ax.set_xlabel("word latency, s")
    ax.set_ylabel("fraction of words")
    ax.set_title("Word latency CDF (final; dotted: first sight)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def sessions_vs_latency(result: dict[str, Any], path: Path) -> Path | None:
    levels = (result.get("throughput") or {}).get("levels") or []
    if not levels:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    sessions = [lv["sessions"] for lv in levels]
    p95 = [lv["final_latency"]["p95"] or np.nan for lv in levels]
    p50 = [lv["final_latency"]["p50"] or np.nan for lv in levels]
    ax.plot(sessions, p95, "o-", label="p95 final latency")
    ax.plot(sessions, p50, "s--", label="p50 final latency")
    ax.axhline(result["throughput"]["bound_sec"], color="red", linewidth=1, label="bound")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent real-time sessions")
    ax.set_ylabel("seconds")
    ax.set_title("Sessions vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def capacity(result: dict[str, Any], path: Path) -> Path | None:
    levels = (result.get("capacity") or {}).get("levels") or []
    if not levels:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    sessions = [lv["sessions"] for lv in levels]
    cpu = [lv["gateway_busy"]["cpu_percent_of_core"] for lv in levels]
    ax.plot(sessions, cpu, "o-", label="gateway CPU")
    ax.set_xlabel("concurrent sessions (stub worker)")
    ax.set_ylabel("gateway CPU, % of one core")
    ax.set_ylim(bottom=0)
    lag = ax.twinx()
    p99 = [1000 * (lv["health_lag"]["p99"] or 0) for lv in levels]
    lag.plot(sessions, p99, "s--", color="tab:red", label="event-loop lag p99")
    lag.axhline(50, color="tab:red", linewidth=0.8, linestyle=":")
    lag.set_ylabel("event-loop lag p99 (GET /health), ms", color="tab:red")
    lag.set_ylim(bottom=0)
    fig.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0.12, 0.88))
    ax.set_title("Gateway capacity")
    ax.grid(alpha=0.3)
    return _save(fig, path)


REPLAYS = Path(__file__).resolve().parent / "results" / "longform-replays.json"


def longform_tradeoff(result: dict[str, Any], path: Path) -> Path | None:
    """WER against final latency on the long-form material: every real-time row of the run
    (median, bars to the runs' range) and every configuration tried in the replay
    (bench/results/longform-replays.json: virtual clock, this machine's cost model)."""
    rows = (result.get("longform") or {}).get("rows", [])
    if not rows:
        return None
    import json

    fig, ax = plt.subplots(figsize=(7.2, 4.8), dpi=110)
    replays = json.loads(REPLAYS.read_text()) if REPLAYS.exists() else []
    for r in replays:
        if r.get("final_p50") is None:
            continue
        stream = r["start"].get("mode") == "stream"
        ax.scatter(
            r["final_p50"], 100 * r["wer"], marker="o" if stream else "s", facecolors="none",
            edgecolors="tab:blue" if stream else "tab:orange", s=28, alpha=0.7,
        )  # fmt: skip
    for r in rows:
        x, y = r["final_p50"], r["wer"]
        if x["median"] is None:
            continue
        color = "tab:blue" if r["config"] == "stream" else "tab:orange"
        ax.errorbar(
            x["median"], 100 * y["median"],
            xerr=[[x["median"] - x["min"]], [x["max"] - x["median"]]],
            yerr=[[100 * (y["median"] - y["min"])], [100 * (y["max"] - y["median"])]],
            fmt="o" if r["sessions"] == 1 else "^", color=color, capsize=3,
        )  # fmt: skip
        ax.annotate(
            f"{r['config']} x{r['sessions']}", (x["median"], 100 * y["median"]),
            textcoords="offset points", xytext=(5, 4), fontsize=7,
        )  # fmt: skip
    whole = result["longform"]["whole_file_wer"]
    ax.axhline(100 * whole, color="grey", linestyle="--", linewidth=1)
    ax.annotate("whole file", (ax.get_xlim()[0], 100 * whole), fontsize=7, xytext=(2, 2),
                textcoords="offset points")  # fmt: skip
    ax.set_xlabel("final word latency p50, s")
    ax.set_ylabel("WER vs reference, %")
    ax.set_title("Long-form: filled = real time (this run), hollow = replay (configurations tried)")
    ax.title.set_fontsize(8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def make_plots(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {
        "latency_vs_wer": latency_vs_wer(result, out_dir / "latency_vs_wer.png"),
        "latency_cdf": latency_cdf(result, out_dir / "latency_cdf.png"),
        "sessions_vs_latency": sessions_vs_latency(result, out_dir / "sessions_vs_latency.png"),
        "capacity": capacity(result, out_dir / "capacity.png"),
        "longform_tradeoff": longform_tradeoff(result, out_dir / "longform_tradeoff.png"),
    }
    return {k: v for k, v in made.items() if v is not None}


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
