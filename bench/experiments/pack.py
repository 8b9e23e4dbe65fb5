"""The packing experiment of docs/benchmarks.md ("Batching and packing"), reproducible:

    python -m bench.experiments.pack [--gap-sec 1.0] [--gap-fill floor] [--max-per-input 3]

Windows: the 15 short eval clips (human references) and 5-9 s slices of pt-longform-dev cut
at word boundaries, as the gateway sends them. Each is transcribed by SpeechModel.transcribe,
by the batched path one window per input, and packed (windows of one language share 30 s
inputs). Reports WER against the references, disagreement with the unpacked text, words lost
or moved between windows, word times outside their window, and model seconds per window.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from asr.audio import decode_file
from asr.batch_decode import BatchDecoder, RawSegment
from asr.config import WorkerSettings
from asr.model import SpeechModel
from asr.vad import speech_spans
from bench.scoring import load_manifest, wer
from contracts.audio import SAMPLE_RATE
from contracts.worker import DecodeOptions


def windows(seed: int = 7) -> list[tuple[str, str, np.ndarray, str | None]]:
    """(id, language, audio, reference or None)."""
    manifest = load_manifest()
    out: list[tuple[str, str, np.ndarray, str | None]] = []
    for clip in manifest.values():
        if clip.duration_s <= 20:
            audio = decode_file(clip.path.read_bytes())
            out.append((clip.id, clip.language, audio, clip.reference_text))
    rng = random.Random(seed)
    long = manifest["pt-longform-dev"]
    audio = decode_file(long.path.read_bytes())
    for _ in range(9):
        length = rng.uniform(5.0, 9.0)
        start = rng.uniform(0, long.duration_s - length)
        piece = audio[int(start * SAMPLE_RATE) : int((start + length) * SAMPLE_RATE)]
        out.append((f"longform@{start:.1f}", "pt", piece, None))
    return out


def text(segments: list[RawSegment]) -> str:
    return " ".join(s.text.strip() for s in segments).strip()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gap-sec", type=float, default=1.0)
    p.add_argument("--gap-fill", default="floor", choices=["floor", "pad"])
    p.add_argument("--max-per-input", type=int, default=3)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--redo", action="store_true", help="decode again windows packing lost")
    p.add_argument("--baseline-cache", type=Path, help="reuse the unpacked results (JSON)")
    args = p.parse_args()
    model = SpeechModel(WorkerSettings())
    model.warm_up()
    items = windows()
    single = BatchDecoder(model.model, pack=False, gap_sec=0, max_per_input=1)
    packed = BatchDecoder(model.model, True, args.gap_sec, args.max_per_input, args.gap_fill)
    rows: dict[str, dict[str, object]] = {wid: {} for wid, *_ in items}
    timing = {"transcribe": 0.0, "batch1": 0.0, "packed": 0.0}
    cache = args.baseline_cache
    if cache and cache.exists():
        saved = json.loads(cache.read_text())
        rows, timing = saved["rows"], saved["timing"]
        items_todo = []
    else:
        items_todo = items
    for wid, lang, audio, _ in items_todo:
        opts = DecodeOptions(language=lang, beam_size=args.beam, temperature=0.0)
        started = time.perf_counter()
        rows[wid]["transcribe"] = model.transcribe(audio, opts).text
        timing["transcribe"] += time.perf_counter() - started
        started = time.perf_counter()
        rows[wid]["batch1"] = text(single.decode([audio], opts)[0])
        timing["batch1"] += time.perf_counter() - started
    if cache and not cache.exists():
        cache.write_text(json.dumps({"rows": rows, "timing": timing}))
    timing["packed"] = 0.0
    outside = 0
    for lang in ("pt", "en"):
        group = [(wid, audio) for wid, lg, audio, _ in items if lg == lang]
        opts = DecodeOptions(language=lang, beam_size=args.beam, temperature=0.0)
        started = time.perf_counter()
        spans = [[(x.start, x.end) for x in speech_spans(a)] for _, a in group]
        results = packed.decode([a for _, a in group], opts, spans if args.redo else None)
        timing["packed"] += time.perf_counter() - started
        for (wid, audio), segments in zip(group, results, strict=True):
            rows[wid]["packed"] = text(segments)
            duration = audio.size / SAMPLE_RATE
            outside += sum(
                not (0 <= w.start <= w.end <= duration) for s in segments for w in s.words
            )
    refs = [(wid, ref) for wid, _, _, ref in items if ref]
    for path in ("transcribe", "batch1", "packed"):
        hyps = [str(rows[wid][path]) for wid, _ in refs]
        print(f"{path:10s} WER vs reference {wer([r for _, r in refs], hyps):.4f}")
    base = [str(rows[wid]["batch1"]) for wid in rows]
    for path in ("transcribe", "packed"):
        got = [str(rows[wid][path]) for wid in rows]
        same = sum(a == b for a, b in zip(base, got, strict=True))
        print(f"{path:10s} vs batch1: WER {wer(base, got):.4f}, identical {same}/{len(base)}")
    print(f"word times outside their window: {outside}; packed windows redone: {packed.redone}")
    n = len(items)
    for path, seconds in timing.items():
        print(f"{path:10s} {seconds:.2f} s for {n} windows ({seconds / n:.3f} s each)")
    for wid, row in rows.items():
        if row["packed"] != row["batch1"]:
            print(f"- {wid}\n  batch1: {row['batch1']}\n  packed: {row['packed']}")


if __name__ == "__main__":
    main()
