"""API keys: only SHA-256 digests are configured, keys never appear in logs.

HTTP clients send `Authorization: Bearer <key>`. Browsers cannot set headers on a WebSocket, so
there the key travels as a subprotocol: the client offers `["asr.v1", "bearer.<key>"]` and the
server selects `asr.v1` (echoing the key would break browsers, which require the selected
protocol to be one they offered... and would put the key in a response header). OpenAI's
Realtime API has the same scheme under other names, `["realtime",
"openai-insecure-api-key.<key>"]`, accepted too (the official SDK sends the header). A query
parameter `?api_key=` also works, but URLs end up in proxy logs and browser history: prefer
the subprotocol. `python -m api.auth KEY` prints the digest to configure.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import HTTPConnection

SUBPROTOCOL = "asr.v1"
BEARER_PREFIX = "bearer."
OPENAI_SUBPROTOCOL = "realtime"
OPENAI_KEY_PREFIX = "openai-insecure-api-key."
ANONYMOUS = "anonymous"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyStore:
    """digest -> key name (the name identifies a key in limits and logs)."""

    keys: dict[str, str]

    @classmethod
    def load(cls, entries: list[str], path: Path | None) -> KeyStore:
        lines = list(entries)
        if path is not None:
            lines += [
                line.strip()
                for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")
            ]
        keys: dict[str, str] = {}
        for line in lines:
            name, _, value = line.rpartition(":")
            value = value.strip().lower()
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError(
                    "API keys are configured as SHA-256 hex digests (python -m api.auth)"
                )
            keys[value] = name.strip() or f"key-{value[:8]}"
        return cls(keys)

    def identify(self, key: str | None) -> str | None:
        """The key's name, or None when it is not one of ours (constant-time compare)."""
        if not key:
            return None
        candidate = digest(key)
        for known, name in self.keys.items():
            if hmac.compare_digest(candidate, known):
                return name
        return None


def presented_key(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    for protocol in offered_subprotocols(connection):
        for prefix in (BEARER_PREFIX, OPENAI_KEY_PREFIX):
            if protocol.startswith(prefix):
                return protocol[len(prefix) :]
    return connection.query_params.get("api_key")


def offered_subprotocols(connection: HTTPConnection) -> list[str]:
    raw = connection.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m api.auth KEY   (prints the digest for ASR_API_KEYS)", file=sys.stderr
        )
        return 2
    print(digest(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
