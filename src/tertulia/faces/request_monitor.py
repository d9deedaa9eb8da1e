"""ASGI middleware: measures every request (face, route template, status, time to the last
byte) for Prometheus, and notes each request to a face, with its account, in the runtime's
recorder, which writes them in batches later: nothing is written on the request's path."""

import secrets
import time
from collections.abc import Sequence

from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tertulia.core.monitoring import FinishedRequest, Recorder, stop_using_recorder, use_recorder
from tertulia.core.monitoring import instruments as metrics
from tertulia.core.monitoring.context import RequestTrace, begin_trace, end_trace
from tertulia.faces.errors import ErrorDialect
from tertulia.store.tables import utcnow

SERVER = "server"  # paths no face owns: /health, /metrics, /docs …
UNMATCHED = "unmatched"  # a path no route has: one label for all, whatever was asked


class RequestMonitor:
    def __init__(self, app: ASGIApp, dialects: Sequence[ErrorDialect]) -> None:
        self.app = app
        self._dialects = dialects

    def _face(self, path: str) -> str:
        return next((dialect.name for dialect in self._dialects if dialect.owns(path)), SERVER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        if scope["type"] not in ("http", "websocket") or runtime is None:
            await self.app(scope, receive, send)
            return
        recorder: Recorder = runtime.recorder
        face = self._face(scope["path"])
        token = use_recorder(recorder)
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, recorder, face)
        else:
            await self._http(scope, receive, send, recorder, face)
        # Kept on an exception, like the request's trace: the last-resort handler logs it.
        stop_using_recorder(token)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, recorder: Recorder, face: str
    ) -> None:
        metrics.WEBSOCKETS_OPEN.labels(face).inc()
        recorder.websockets += 1
        # A socket's log lines carry an id of its own too (and its account, once admitted).
        trace = begin_trace(RequestTrace(f"ws_{secrets.token_hex(12)}"))
        try:
            await self.app(scope, receive, send)
        finally:
            end_trace(trace)
            recorder.websockets -= 1
            metrics.WEBSOCKETS_OPEN.labels(face).dec()

    async def _http(self, scope: Scope, receive: Receive, send: Send, recorder: Recorder, face: str) -> None:
        arrived, started = utcnow(), time.perf_counter()
        status = 500  # if the app fails before it answers

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.HTTP_IN_PROGRESS.labels(face).inc()
        recorder.in_flight += 1
        try:
            await self.app(scope, receive, noting_status)
        finally:
            recorder.in_flight -= 1
            metrics.HTTP_IN_PROGRESS.labels(face).dec()
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(face, method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(face, method, route, str(status)).observe(seconds)
            trace: RequestTrace | None = scope.get("state", {}).get("trace")
            if face != SERVER:  # not health checks and scrapes: they would drown the figures
                recorder.add_request(
                    FinishedRequest(
                        created_at=arrived,
                        account_id=trace.account_id if trace else None,
                        face=face,
                        method=method[:16],
                        route=route[:256],
                        status=status,
                        duration_ms=round(seconds * 1000, 3),
                        request_id=trace.request_id if trace else None,
                    )
                )


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/api/v1/bots/{bot_id}`), whatever was asked.

    The route may know only its own part of the path (FastAPI keeps a router's routes as they
    were declared, under each prefix it is included with: ChatBotKit's under /v1 and /api/v1);
    the prefix is then the shortest start of the path after which that part matches. Prefixes
    are literal, so the template never carries a value a client chose.
    """
    route = scope.get("route")
    pattern, template = getattr(route, "path_regex", None), getattr(route, "path", None)
    if pattern is None or template is None:
        return UNMATCHED
    path = get_route_path(scope)
    cut = 0
    while cut < len(path):
        if pattern.match(path[cut:]):
            return path[:cut] + template
        cut = path.find("/", cut + 1)
        if cut < 0:
            break
    return template
