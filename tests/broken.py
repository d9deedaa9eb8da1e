"""An unexpected failure on demand: a route that raises, added to a running app, for the tests
that each face answers it with its own 500 envelope and reveals nothing."""

import httpx

SECRET = "hunter2"  # in the failure's message; no response may show it


async def call_broken_route(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """Adds a route at `path` that fails with a RuntimeError, and calls it."""
    app = client._transport.app  # type: ignore[attr-defined]

    async def broken() -> None:
        raise RuntimeError(f"connection string postgres://admin:{SECRET}@db")

    app.router.add_api_route(path, broken)
    response = await client.get(path)
    assert SECRET not in response.text and "RuntimeError" not in response.text
    return response
