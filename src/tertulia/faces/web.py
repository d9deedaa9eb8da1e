"""The web channel's files: /widget.js (embedded by any allowed site) and the operator
console at /console. Plain files shipped in the package; both speak only the public API
(docs/web-channel.md)."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)

WEB = files("tertulia") / "web"
CONSOLE_FILES = {"console.js": "text/javascript", "console.css": "text/css"}
# Pages load it on every visit: revalidate after a short while, so an upgrade shows soon.
CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/widget.js")
async def widget_script() -> FileResponse:
    return FileResponse(str(WEB / "widget.js"), media_type="text/javascript", headers=CACHE)


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/")
async def console_page() -> FileResponse:
    # The console page is the account's; no other site may frame it.
    headers = {"Cache-Control": "no-cache", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
    return FileResponse(str(WEB / "console" / "index.html"), media_type="text/html", headers=headers)


@router.get("/console/{name}")
async def console_file(name: str) -> Response:
    media_type = CONSOLE_FILES.get(name)
    if media_type is None:
        return RedirectResponse("/console/", status_code=307)  # a console route typed by hand
    return FileResponse(str(WEB / "console" / name), media_type=media_type, headers=CACHE)
