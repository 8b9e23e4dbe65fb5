"""`python -m api [--host H --port P]`: run the gateway."""

from __future__ import annotations

import argparse

import uvicorn

from api.config import GatewaySettings
from api.main import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="real-time ASR gateway")
    parser.add_argument("--host", help="bind address (ASR_HOST)")
    parser.add_argument("--port", type=int, help="port (ASR_PORT, default 8000)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GatewaySettings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_frame_bytes + 64 * 1024,  # room to answer 1009 ourselves
        ws_ping_interval=20,
        ws_ping_timeout=20,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
