"""`stream=true` on the file routes: server-sent events as the file's pieces finish, in order.

Each piece with words gives one `transcript.text.delta`; then `transcript.text.done` carries the
whole text (the same as the non-streamed answer: the deltas joined) and the usage, in tokens as
the SDK defines it there: output tokens are the text's, in the model's tokenizer; input tokens
are the audio the model was given, at whisper's rate of one encoder position per 20 ms. A
failure after the stream began arrives as an event holding OpenAI's `error` object, which the SDK
raises.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from api.file_transcription import PieceResult
from api.openai.errors import error_body
from api.pool import WorkerError


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


AUDIO_TOKENS_PER_SEC = 50  # whisper's encoder: 1500 positions per 30 s


def usage(duration_sec: float) -> dict[str, Any]:
    """What a whole-file request used: its audio, as OpenAI reports it for whisper-1."""
    return {"type": "duration", "seconds": duration_sec}


def token_usage(heard_sec: float, text_tokens: int) -> dict[str, Any]:
    audio_tokens = round(heard_sec * AUDIO_TOKENS_PER_SEC)
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
        "output_tokens": text_tokens,
        "total_tokens": audio_tokens + text_tokens,
    }


async def text_events(
    pieces: AsyncGenerator[PieceResult, None], model: str
) -> AsyncIterator[bytes]:
    text = ""
    heard_sec, text_tokens = 0.0, 0
    try:
        async with aclosing(pieces):  # a client gone: the pieces still running are cancelled
            async for piece in pieces:
                heard_sec += piece.heard_sec
                text_tokens += piece.text_tokens
                if not piece.text:
                    continue
                delta = f" {piece.text}" if text else piece.text
                text += delta
                yield sse({"type": "transcript.text.delta", "delta": delta})
    except WorkerError as exc:
        message = f"the worker pool could not transcribe the file: {exc}"
        yield sse(error_body(503 if exc.retryable else 502, message))
        return
    done = {"type": "transcript.text.done", "text": text}
    yield sse({**done, "usage": token_usage(heard_sec, text_tokens), "model": model})
