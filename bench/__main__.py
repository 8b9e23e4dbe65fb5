"""`python -m bench` (`make bench BENCH_ARGS=...`): latency, quality, throughput and capacity.

Against a running stack (`--url http://host:8000`) or one it starts itself (workers + gateway
through launcher.processes). Writes bench/results/<timestamp>.json, a report.md with PNG plots next
to it, and with --publish the generated section of docs/benchmarks.md.

python -m bench --quick                  # one short clip, balanced profile (~30 s)
python -m bench --publish                # everything (see docs/benchmarks.md for durations)
python -m bench --sections quality --clips jfk,fleurs-pt-001 --profiles balanced,ultra_fast
python -m bench --report bench/results/20260101T120000Z.json --publish
python -m bench --report NEW.json EARLIER.json --publish   # a partial run above an earlier full one
python -m bench --sections worker-load --worker-load-in-flight 1,16   # worker + ceiling
python -m bench --sections worker-load --worker-env ASR_WORKER_BATCHING=on \
    --worker-env ASR_WORKER_MAX_BATCH=16
python -m bench --sections sweep --sweep-sessions 4,8 --sweep-gateways 2   # end to end
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import clips as clip_sel
from bench.scoring import REPO_ROOT, Clip, load_manifest

if TYPE_CHECKING:
    from bench.stack import Stack

Save = Callable[[], None]  # writes the results JSON so far

SECTIONS = (
    "quality",
    "longform",
    "throughput",
    "overhead",
    "files",
    "capacity",
    "worker-load",
    "sweep",
)
# run only when named: the sweep is sized for a GPU (hundreds of sessions)
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "sweep")
QUICK_CLIP = "ufpalign-coxinha"
RESULTS = REPO_ROOT / "bench" / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running gateway (http://host:port); default: start one")
    p.add_argument("--worker-url", help="its worker pool (default: the gateway's /ready upstream)")
    p.add_argument("--manifest", help="manifest.tsv in the ../shared/eval format")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_CLIP}, balanced, quality only")
    p.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help="comma list of " + "/".join(SECTIONS) + " (default: all but sweep)",
    )
    p.add_argument(
        "--clips", help="clip ids for the profile runs (default: all up to --max-clip-sec)"
    )
    p.add_argument("--max-clip-sec", type=float, default=120.0)
    p.add_argument("--profiles", help="rows: max_quality,balanced,responsive,ultra_fast,"
                   "balanced+partials,stream (default: all)")  # fmt: skip
    p.add_argument("--frame-ms", type=float, default=300.0)
    p.add_argument("--longform-configs", default="stream,reference", help="stream,reference")
    p.add_argument("--longform-sessions", default="1,2,3,4", help="concurrent sessions")
    p.add_argument("--longform-runs", type=int, default=3, help="runs of 1 and 2 sessions")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per started worker (0: all)")
    p.add_argument("--throughput-profile", default="balanced")
    p.add_argument("--throughput-sec", type=float, default=30.0, help="audio per session")
    p.add_argument("--throughput-clips", help="clip ids (default: clips at least that long)")
    p.add_argument("--max-sessions", type=int, default=64)
    p.add_argument("--bound-sec", type=float, default=3.0, help="p95 final latency bound")
    p.add_argument("--long-clip", default="cuttledoc-pt-tts-adam", help="file endpoint + memory")
    p.add_argument("--file-configs", default="1x1,1x2,2x1", help="workers x threads per worker")
    p.add_argument("--overhead-repeat", type=int, default=3)
    p.add_argument("--overhead-clips", help="clip ids (default: every clip up to 30 s)")
    p.add_argument("--capacity-sessions", default="100,300,500")
    p.add_argument("--capacity-sec", type=float, default=40.0)
    p.add_argument("--capacity-profile", default="balanced+partials", help="a --profiles row")
    p.add_argument("--stub-sleep-ms", type=float, default=50.0)
    p.add_argument("--worker-load-in-flight", default="16", help="levels: requests in flight")
    p.add_argument("--worker-load-windows", type=int, default=64, help="windows per level")
    p.add_argument("--worker-load-window-sec", type=float, default=7.0)
    p.add_argument("--worker-load-max-sec", type=float, default=120.0, help="per level")
    p.add_argument("--worker-load-beam", type=int, default=5)
    p.add_argument("--worker-load-clips", help="clip ids (default: every clip a window long)")
    p.add_argument("--ceiling-batches", default="1,16", help="'' to skip the ceiling")
    p.add_argument(
        "--worker-load-check",
        default="jfk",
        help="clip the worker must transcribe word for word before any figure ('' to skip)",
    )
    p.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting of the worker this run starts (worker-load), e.g. ASR_WORKER_BATCHING=on",
    )
    p.add_argument("--sweep-sessions", default="16,32,64,128,192,256,320", help="levels")
    p.add_argument("--sweep-gateways", type=int, default=3, help="gateway processes")
    p.add_argument("--sweep-workers", type=int, default=1)
    p.add_argument("--sweep-sec", type=float, default=40.0, help="audio per session")
    p.add_argument("--sweep-profile", default="balanced", help="a --profiles row")
    p.add_argument("--sweep-clips", help="clip ids (default: clips at least --sweep-sec long)")
    p.add_argument("--sweep-bound-sec", type=float, default=2.5, help="p95 final latency bound")
    p.add_argument("--sweep-go-on", action="store_true", help="run levels past a failing one")
    p.add_argument(
        "--worker-slots",
        type=int,
        help="model calls the worker runs at once (default: its ASR_WORKER_CONCURRENCY or 1)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and report go")
    p.add_argument("--publish", action="store_true", help="write docs/benchmarks.md")
    p.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="only render the report of existing JSONs (with --publish, newest first: the "
        "sections of a partial run above those of the earlier run they add to)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sections = "quality"
        args.clips = args.clips or QUICK_CLIP
        args.profiles = args.profiles or "balanced"
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad_env = [kv for kv in args.worker_env if "=" not in kv]
    if bad_env:
        p.error(f"--worker-env takes KEY=VALUE, not {bad_env}")
    args.worker_env_map = dict(kv.split("=", 1) for kv in args.worker_env)
    unknown = set(args.section_list) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    from bench.quality import ROWS

    rows = [
        *(_ids(args.profiles) or []),
        args.throughput_profile,
        args.capacity_profile,
        args.sweep_profile,
    ]
    if set(rows) - set(ROWS):
        p.error(f"unknown profile rows: {sorted(set(rows) - set(ROWS))}; known: {list(ROWS)}")
    return args


def _ids(text: str | None) -> list[str] | None:
    return [i.strip() for i in text.split(",") if i.strip()] if text else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from bench.report import publish, write_report

    if args.report:
        results = [json.loads(path.read_text(encoding="utf-8")) for path in args.report]
        for path, report in zip(args.report, results, strict=True):
            print(write_report(report, path.with_suffix("")))
        if args.publish:
            print(publish(results))
        return 0
    from bench.resources import machine

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    full = args.section_list == list(DEFAULT_SECTIONS)
    kind = "quick" if args.quick else ("full" if full else "partial")
    result: dict[str, Any] = {
        "run": {"timestamp": stamp, "kind": kind, "argv": argv, "duration_sec": 0.0},
        "machine": machine(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    began = time.monotonic()

    def save() -> None:
        result["run"]["duration_sec"] = round(time.monotonic() - began, 1)
        json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")

    manifest = load_manifest(args.manifest)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        run_sections(args, manifest, result, log_dir, save)
    finally:
        save()
    report = write_report(result, json_path.with_suffix(""))
    print(f"results: {json_path}\nreport:  {report}")
    if args.publish:
        print(f"published: {publish(result)}")
    return 1 if (result.get("worker_load") or {}).get("aborted") else 0


def run_sections(
    args: argparse.Namespace,
    manifest: dict[str, Clip],
    result: dict[str, Any],
    log_dir: Path,
    save: Save,
) -> None:
    from bench.stack import external_stack, start_stack

    sections = args.section_list
    frame_sec = args.frame_ms / 1000
    needs_stack = {"quality", "longform", "throughput", "overhead"} & set(sections)
    if needs_stack:
        stack = (
            external_stack(args.url, args.worker_url)
            if args.url
            else start_stack(1, args.threads or None, log_dir)
        )
        try:
            result["worker"] = stack.worker_info()
            result["stack"] = stack.config
            run_live_sections(args, manifest, result, stack, frame_sec, save)
        finally:
            stack.stop()  # only what this run started
    if "files" in sections:
        from bench.file_endpoint import run_file_configs

        external = external_stack(args.url, args.worker_url) if args.url else None
        configs = [c.strip() for c in args.file_configs.split(",") if c.strip()]
        result["file_endpoint"] = run_file_configs(
            manifest[args.long_clip], configs, log_dir, external
        )
        save()
    if "worker-load" in sections:
        result["worker_load"] = run_worker_load_section(args, manifest, log_dir)
        save()
    if "sweep" in sections:
        from bench.quality import ROWS
        from bench.sweep import SweepPlan, run_sweep_section, text_report

        ids = _ids(args.sweep_clips)
        pool = clip_sel.select(manifest, ids) if ids else [
            c for c in manifest.values() if c.duration_s >= args.sweep_sec
        ] or [_longest(manifest)]  # fmt: skip
        sweep = SweepPlan(
            [int(n) for n in args.sweep_sessions.split(",") if n.strip()],
            args.sweep_sec,
            args.sweep_bound_sec,
            args.sweep_go_on,
        )
        env = dict(args.worker_env_map)
        if args.threads:
            env.setdefault("ASR_WORKER_CPU_THREADS", str(args.threads))
        result["sweep"] = run_sweep_section(
            pool,
            ROWS[args.sweep_profile].start,
            frame_sec,
            sweep,
            args.sweep_workers,
            args.sweep_gateways,
            env,
            log_dir,
        )
        print(text_report(result["sweep"]), flush=True)
        save()
    if "capacity" in sections:
        from bench.capacity import run_capacity
        from bench.quality import ROWS

        levels = [int(n) for n in args.capacity_sessions.split(",") if n.strip()]
        clip = _longest(manifest)
        start = ROWS[args.capacity_profile].start
        result["capacity"] = asyncio.run(
            run_capacity(
                levels, clip, start, args.capacity_sec, frame_sec, log_dir, args.stub_sleep_ms
            )
        )
        save()


def run_live_sections(
    args: argparse.Namespace,
    manifest: dict[str, Clip],
    result: dict[str, Any],
    stack: Stack,
    frame_sec: float,
    save: Save,
) -> None:
    from bench.clips import WholeFileCache

    cache = WholeFileCache(stack.worker_url)
    sections = args.section_list
    if "quality" in sections:
        from bench.quality import ROWS, run_rows

        names = _ids(args.profiles) or list(ROWS)
        rows = [ROWS[n] for n in names]
        chosen = clip_sel.select(manifest, _ids(args.clips), args.max_clip_sec)
        result["quality"] = asyncio.run(run_rows(stack.ws_url, chosen, rows, cache, frame_sec))
        result["resources"] = resident_memory(stack)
        save()
    if "longform" in sections:
        result["longform"] = longform(args, manifest, stack, frame_sec)
        save()
    if "throughput" in sections:
        from bench.quality import ROWS
        from bench.throughput import run_throughput

        ids = _ids(args.throughput_clips)
        pool = clip_sel.select(manifest, ids) if ids else [
            c for c in manifest.values() if c.duration_s >= args.throughput_sec
        ] or [_longest(manifest)]  # fmt: skip
        start = ROWS[args.throughput_profile].start
        result["throughput"] = asyncio.run(
            run_throughput(
                stack, pool, cache, start, frame_sec, args.throughput_sec, args.max_sessions,
                args.bound_sec,
            )
        )  # fmt: skip
        save()
    if "overhead" in sections:
        from bench.worker_overhead import run_overhead

        ids = _ids(args.overhead_clips)
        short = clip_sel.select(manifest, ids, None if ids else 30.0)
        rtf_clip = next((c for c in manifest.values() if 60.0 <= c.duration_s <= 200.0), None)
        result["worker_overhead"] = run_overhead(
            stack.worker_url,
            stack.worker_pids,
            args.threads,
            short,
            window_clip=max(short, key=lambda c: c.duration_s),
            rtf_clip=rtf_clip,
            memory_clip=manifest.get(args.long_clip),
            repeat=args.overhead_repeat,
        )
        save()


def longform(
    args: argparse.Namespace, manifest: dict[str, Clip], stack: Stack, frame_sec: float
) -> dict[str, Any]:
    from bench.clips import WholeFileCache
    from bench.longform import longform_clips
    from bench.longform_section import CONFIGS, run_longform, whole_file

    cache = WholeFileCache(stack.worker_url)

    def word_timer(clip: Clip) -> list[tuple[str, float, float]]:
        segments = cache.get(clip).segments
        return [(w["word"], w["start"], w["end"]) for s in segments for w in s["words"]]

    clips = longform_clips(manifest, word_timer)
    whole = {c.id: whole_file(stack.worker_url, c) for c in clips}
    configs = _ids(args.longform_configs) or list(CONFIGS)
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown long-form configs: {sorted(unknown)}; known: {list(CONFIGS)}")
    levels = [int(n) for n in _ids(args.longform_sessions) or ["1"]]
    return asyncio.run(
        run_longform(stack.ws_url, clips, whole, configs, levels, args.longform_runs, frame_sec)
    )


def run_worker_load_section(
    args: argparse.Namespace, manifest: dict[str, Clip], log_dir: Path
) -> dict[str, Any]:
    """Against --worker-url, or a worker started here with --worker-env (and --threads)."""
    from bench.worker_load import cut_windows, run_worker_load, text_report
    from launcher.processes import free_port, worker_process

    env = dict(args.worker_env_map)
    if args.threads:
        env.setdefault("ASR_WORKER_CPU_THREADS", str(args.threads))
    ids = _ids(args.worker_load_clips)
    pool = clip_sel.select(manifest, ids) if ids else list(manifest.values())
    windows = cut_windows(pool, args.worker_load_window_sec, args.worker_load_windows)
    levels = [int(n) for n in args.worker_load_in_flight.split(",") if n.strip()]
    slots = args.worker_slots or int(env.get("ASR_WORKER_CONCURRENCY", "1"))
    batches = [int(n) for n in args.ceiling_batches.split(",") if n.strip()]
    worker = None
    url = args.worker_url
    if not url:
        # room in the queue for every level's requests: a 503 here would measure the limit
        env.setdefault("ASR_WORKER_QUEUE_LIMIT", str(max([16, *levels])))
        worker = worker_process(free_port(), env=env, log_dir=log_dir, name="bench-worker")
        worker.start().wait_ready(timeout=300)
        url = worker.url
    try:
        import httpx

        info = httpx.get(f"{url}/ready", timeout=10).json()
        out = run_worker_load(
            url,
            windows,
            levels,
            args.worker_load_max_sec,
            args.worker_load_beam,
            slots,
            batches,
            ceiling_env=env,
            ceiling_threads=args.threads,
            check=manifest.get(args.worker_load_check) if args.worker_load_check else None,
        )
    finally:
        if worker is not None:
            worker.stop()
    out["worker"] = info
    out["worker_env"] = env if worker is not None else None
    print(text_report(out), flush=True)
    return out


def resident_memory(stack: Stack) -> dict[str, float | None]:
    """RSS of the services after the profile runs (None: a PID we could not find)."""
    from bench.resources import rss_bytes

    def mb(pids: list[int]) -> float | None:
        return round(rss_bytes(pids) / 2**20, 1) if pids else None

    return {"gateway_rss_mb": mb(stack.gateway_pids), "worker_rss_mb": mb(stack.worker_pids)}


def _longest(manifest: dict[str, Clip]) -> Clip:
    return max(manifest.values(), key=lambda c: c.duration_s)


if __name__ == "__main__":
    raise SystemExit(main())
