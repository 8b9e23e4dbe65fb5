"""The demo page, served with `Cache-Control: no-cache` and an ETag.

The reference's first troubleshooting cause was a browser running a stale app.js: no-cache
makes the browser revalidate every time (a cheap 304 thanks to the ETag).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class NoCacheStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response
