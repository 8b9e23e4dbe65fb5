"""CLI: `python -m client stream FILE [--url] [--profile] [--realtime]` and
`python -m client transcribe FILE [--url] [--format]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from client.audio import read_audio_pcm16
from client.files import transcribe_file
from client.resilient import ResilientStream


async def _stream(args: argparse.Namespace) -> int:
    """Stream a file; reconnects and resumes by itself (client/resilient.py)."""
    pcm = read_audio_pcm16(args.file)
    start: dict[str, object] = {"partials": not args.no_partials, "mode": args.mode}
    if args.profile:
        start["profile"] = args.profile
    if args.language:
        start["language"] = args.language

    def show(event: dict[str, Any]) -> None:
        kind = event["event"]
        if args.json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
        elif kind == "ready":
            config = event["config"]
            print(
                f"# session {event['session_id']}: window {config['batch_window_sec']} s, "
                f"beam {config['beam_size']}, mode {config['mode']}",
                file=sys.stderr,
            )
        elif kind == "transcript":
            print(f"[{event['start']:7.2f}-{event['end']:7.2f}] {event['text']}", flush=True)
        elif kind == "partial" and sys.stderr.isatty():
            print(f"\r  … {event['text'][-100:]}", end="", file=sys.stderr, flush=True)
        elif kind == "error":
            print(f"error {event['code']}: {event['message']}", file=sys.stderr)

    stream = ResilientStream(args.url, start, api_key=args.api_key, on_event=show)
    player = asyncio.create_task(stream.play(pcm, frame_ms=args.frame_ms, realtime=args.realtime))
    try:
        await stream.run()
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        player.cancel()
    return 0


async def _transcribe(args: argparse.Namespace) -> int:
    form = {"language": args.language} if args.language else {}
    result = await transcribe_file(args.url, args.file, response_format=args.format, **form)
    print(json.dumps(result, ensure_ascii=False, indent=2) if isinstance(result, dict) else result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stream = sub.add_parser("stream", help="stream a file over the WebSocket protocol")
    stream.add_argument("file")
    stream.add_argument("--url", default="ws://127.0.0.1:8000/ws/transcribe")
    stream.add_argument(
        "--profile", choices=["max_quality", "balanced", "responsive", "ultra_fast"]
    )
    stream.add_argument("--mode", choices=["batch", "stream"], default="batch")
    stream.add_argument("--language")
    stream.add_argument("--realtime", action="store_true", help="pace frames in real time")
    stream.add_argument("--frame-ms", type=int, default=300)
    stream.add_argument("--no-partials", action="store_true")
    stream.add_argument("--json", action="store_true", help="print every event as JSON")
    stream.add_argument("--api-key", help="sent as the bearer.<key> WebSocket subprotocol")
    files = sub.add_parser("transcribe", help="transcribe a file over HTTP")
    files.add_argument("file")
    files.add_argument("--url", default="http://127.0.0.1:8000")
    files.add_argument("--language")
    files.add_argument(
        "--format", default="text", choices=["json", "text", "srt", "vtt", "verbose_json"]
    )
    args = parser.parse_args(argv)
    runner = _stream if args.command == "stream" else _transcribe
    return asyncio.run(runner(args))


if __name__ == "__main__":
    raise SystemExit(main())
