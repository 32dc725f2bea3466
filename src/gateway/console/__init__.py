"""The web console: static pages served by the gateway at ``/`` and ``/console/…``.

Everything runs in the browser against the public /v1 API, signing each request itself; the
gateway only hands out files, so the console needs no session, cookie or server-side state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC: Final = Path(__file__).with_name("static")
INDEX: Final = STATIC / "index.html"

# The page talks only to its own origin and runs only its own scripts: a stray <script> in a log
# line can never run, and nothing can be sent elsewhere with the api key in memory.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_console_routes(app: web.Application) -> None:
    """Serve the console's page at ``/`` and its assets under ``/console/``."""
    app.router.add_get("/", _index)
    app.router.add_static("/console/", STATIC, name="console", append_version=False)
    app.on_response_prepare.append(_secure_console_responses)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(INDEX)


async def _secure_console_responses(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/" or request.path.startswith("/console/"):
        response.headers.update(SECURITY_HEADERS)
