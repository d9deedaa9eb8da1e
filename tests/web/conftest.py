"""Browser tests: Debian's Chromium, headless, driven by Playwright; a real Tertulia server in
a thread; and a small site of its own on another origin that embeds the widget.

Chromium comes from Debian (`apt-get install chromium`, done by scripts/test): Playwright's own
browser download cannot work offline. Where it is missing the tests are skipped with that
reason, except under CI, where they must run.
"""

import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tertulia.settings import Settings
from tests.live_server import serve_in_thread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_INSTALLED = Path(CHROMIUM).exists()
# What Chromium needs on a machine with a closed network, as root (see the env notes):
# no sandbox, no GPU, and none of its background calls home.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where the run leaves its screenshots (the README's come from here).
SCREENSHOTS = Path(
    os.environ.get("TERTULIA_SCREENSHOTS", Path(__file__).parents[2] / "build" / "screenshots")
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium for one test (Playwright's async API: the tests' event loop is its)."""
    if not CHROMIUM_INSTALLED:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium is required under CI (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def tertulia(database, stack_redis_url: str | None) -> Iterator[str]:
    """A real server: `http://127.0.0.1:port` (its live events through Redis on the scale stack)."""
    redis = {"redis_url": stack_redis_url} if stack_redis_url else {}
    with serve_in_thread(Settings(database_url=database.url, **redis)) as address:
        yield f"http://{address}"


class Site:
    """A web site on another origin than Tertulia's: pages set by the test."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Pages(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = site.pages.get(self.path.split("?")[0])
                body = (page or "not found").encode()
                self.send_response(200 if page is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
        self.port = self.server.server_address[1]
        # "localhost" and "127.0.0.1" are two origins to a browser: the same pages on both.
        self.origin = f"http://localhost:{self.port}"
        self.other_origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    try:
        yield served
    finally:
        served.close()


async def screenshot(page: Any, name: str, **options: Any) -> Path:
    """Saves what `page` shows as SCREENSHOTS/<name>.png (Playwright makes the folder)."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), **options)
    return path
