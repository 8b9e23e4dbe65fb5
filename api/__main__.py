"""`python -m api [--host H --port P]`: run the gateway."""

from __future__ import annotations

import argparse
import socket

import uvicorn

from api.config import GatewaySettings
from api.main import create_app
from contracts.process import GATEWAY_MALLOC, reexec_with_malloc_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="real-time ASR gateway")
    parser.add_argument("--host", help="bind address (ASR_HOST)")
    parser.add_argument("--port", type=int, help="port (ASR_PORT, default 8000)")
    args = parser.parse_args(argv)
    if argv is None:
        reexec_with_malloc_settings("api", GATEWAY_MALLOC)  # why and the figures: asr/memory.py
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GatewaySettings(**overrides)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # room to answer too large frames ourselves, Realtime appends (base64: 4/3) included
        ws_max_size=settings.max_frame_bytes * 4 // 3 + 64 * 1024,
        # no server pings: a session under backpressure stops reading its socket, and a pong
        # stuck behind unread audio would kill it; dead clients end by ASR_IDLE_TIMEOUT_SEC
        ws_ping_interval=None,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_sec) + 5,
    )
    DrainingServer(config).run()


class DrainingServer(uvicorn.Server):
    """On SIGTERM: stop accepting, let every session finish its windows and get `end` with a
    1001 close, then shut down as usual (uvicorn alone would close sockets with 1012 at once)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        app = self.config.loaded_app
        while hasattr(app, "app") and not hasattr(app, "state"):
            app = app.app
        registry = getattr(getattr(app, "state", None), "registry", None)
        if registry is not None:
            await registry.drain(app.state.settings.shutdown_timeout_sec)
        await super().shutdown(sockets)


if __name__ == "__main__":
    main()
