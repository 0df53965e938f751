"""The desk blotter at ``/desk`` and its assets under ``/ui/``, served from this package.

A page and its assets need no token to load: they are the same static files for everyone. Every
call the page then makes goes to the public API with the desk's bearer token, so a page shows
only what that token may read. Everything comes from the gateway itself (trading networks are
often air-gapped): the Content-Security-Policy lets the page load scripts and styles and open
connections only to the origin it came from, with no inline script or style.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

STATIC = Path(__file__).parent / "static"
PAGES = {"/desk": "desk.html"}  # path -> the page's HTML file in STATIC
ASSETS = "/ui/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# what a Host header may be for it to go into the policy (name or IPv4 or [IPv6], and a port)
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def is_public(path: str) -> bool:
    """Whether ``path`` is a page or an asset, which anyone may load without a token."""
    return path in PAGES or path.startswith(ASSETS)


def content_security_policy(host: str | None) -> str:
    """Same origin only. 'self' covers ws:/wss: to the same host in current browsers (CSP 3);
    the host is also named explicitly for those that still read 'self' as http(s) only."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """Every servable file of STATIC by name, with its content type, read once. A lookup of
    any other name misses without being remembered (an anonymous caller can ask for many)."""
    return {
        path.name: (path.read_bytes(), TYPES[path.suffix])
        for path in STATIC.iterdir()
        if path.suffix in TYPES and path.is_file() and not path.name.startswith(".")
    }


def _serve(request: Request, name: str) -> Response:
    found = _assets().get(name)
    if found is None:
        raise HTTPException(404, f"no asset {name!r}")
    body, media_type = found
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


router = APIRouter(include_in_schema=False)


@router.api_route(ASSETS + "{name}", methods=["GET", "HEAD"])
async def asset(name: str, request: Request) -> Response:  # in memory: no thread hop
    return _serve(request, name)


def _page(name: str):
    async def page(request: Request) -> Response:
        return _serve(request, name)

    return page


for _path, _name in PAGES.items():
    router.add_api_route(_path, _page(_name), methods=["GET", "HEAD"])
