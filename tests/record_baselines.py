"""Record tests/baselines.json: run the tests that compare text several times, collect what
each `check_wer` measured, and keep per name the median, the spread and the runs.

    python -m tests.record_baselines --runs 5
    python -m tests.record_baselines --runs 5 -k "gateway and long_form"   # some of them

Runs one after another on this machine (never beside another suite: the machine has two
cores). Entries not measured this time are kept as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from tests.baseline import BASELINES, RECORD_ENV, load

ROOT = Path(__file__).resolve().parent.parent
# the tests that call check_wer are marked `baseline` (the e2e ones drive a real browser)
DEFAULT_PATHS = ["tests"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument("paths", nargs="*", default=DEFAULT_PATHS)
    args = parser.parse_args(argv)
    measured: dict[str, list[float]] = defaultdict(list)
    words: dict[str, int] = {}
    began = time.monotonic()
    for run in range(args.runs):
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as out:
            record = out.name
        command = [sys.executable, "-m", "pytest", "-q", "-m", "baseline", "-p", "no:cacheprovider"]
        if args.keyword:
            command += ["-k", args.keyword]
        env = {**os.environ, RECORD_ENV: record}
        done = subprocess.run([*command, *args.paths], cwd=ROOT, env=env, check=False)
        lines = Path(record).read_text(encoding="utf-8").splitlines()
        Path(record).unlink()
        for line in lines:
            item = json.loads(line)
            measured[item["name"]].append(item["wer"])
            words[item["name"]] = item["words"]
        print(
            f"run {run + 1}/{args.runs}: pytest exit {done.returncode}, {len(lines)} measurements"
        )
    baselines = load()
    entries = baselines.get("entries", {})
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for name, values in sorted(measured.items()):
        entries[name] = {
            "median": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
            "runs": [round(v, 4) for v in values],
            "words": words[name],
            "recorded": today,
        }
    # a partial recording (some paths or -k) keeps the other entries and says so in `how`
    how = " ".join(
        [f"python -m tests.record_baselines --runs {args.runs}"]
        + ([f"-k {args.keyword!r}"] if args.keyword else [])
        + ([] if args.paths == DEFAULT_PATHS else args.paths)
    )
    baselines = {
        "recorded": today,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "how": how,
        "minutes": round((time.monotonic() - began) / 60, 1),
        "entries": dict(sorted(entries.items())),
    }
    BASELINES.write_text(json.dumps(baselines, indent=1, ensure_ascii=False) + "\n", "utf-8")
    short = [n for n, v in measured.items() if len(v) < args.runs]
    print(f"wrote {BASELINES} ({len(measured)} names measured)")
    if short:
        print(f"measured fewer than {args.runs} times (a test failed before it?): {short}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
