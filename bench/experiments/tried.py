"""Collect the replay runs of the policy experiments into one table (for docs/benchmarks.md and
its WER-against-latency plot):

    python -m bench.experiments.tried RUN.json [RUN.json ...] --out bench/results/replays.json

Each RUN.json is a `python -m bench.experiments.replay --json` output; its file name is the
configuration's name. Pooled WER over the run's clips, the median over clips of their final
p50 and p95 and first-sight p50 (virtual clock, the replay's cost model).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench.scoring import wer


def summarise(path: Path) -> dict[str, Any]:
    run = json.loads(path.read_text())
    rows = run["rows"]
    refs = [r["reference"] for r in rows]

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "name": path.stem,
        "start": run["start"],
        "set": run["set"],
        "wer": round(wer(refs, [r["text"] for r in rows]), 4),
        "whole_file_wer": round(wer(refs, [r["whole_text"] for r in rows]), 4),
        "final_p50": median("final_p50"),
        "final_p95": median("final_p95"),
        "first_p50": median("first_p50"),
        "clips": {r["clip"]: round(r["wer"], 4) for r in rows},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", action="append", default=[], help="name=what it tried")
    args = parser.parse_args(argv)
    notes = dict(item.split("=", 1) for item in args.note)
    table = [summarise(p) for p in args.runs]
    for row in table:
        row["note"] = notes.get(row["name"], "")
    args.out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    for row in table:
        print(
            f"{row['name']:24s} WER {row['wer']:.3f} (whole {row['whole_file_wer']:.3f}) "
            f"final p50 {row['final_p50']} p95 {row['final_p95']} first {row['first_p50']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
