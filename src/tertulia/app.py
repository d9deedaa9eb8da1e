"""create_app(settings): mounts the faces, the middleware and the lifespan. Wiring only."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tertulia import __version__
from tertulia.faces import agentv2, bytchat, chatagent, chatbotkit, criabot, health, metrics, openai, web
from tertulia.faces.chatagent.widget import WidgetCors
from tertulia.faces.errors import install_error_handlers
from tertulia.faces.inputs import refuse_nul_in_url
from tertulia.faces.request_context import RequestContextMiddleware
from tertulia.faces.request_monitor import RequestMonitor
from tertulia.runtime import start_runtime
from tertulia.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start_runtime(settings)
        try:
            yield
        finally:
            await app.state.runtime.close()
            metrics.process_ended()

    app = FastAPI(
        title="Tertulia",
        version=__version__,
        description="A self-hostable chatbot platform server that speaks the APIs your clients already use.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_in_url)],
    )
    app.include_router(health.router)
    app.include_router(web.router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(chatbotkit.router)
    app.include_router(chatagent.router)
    app.include_router(openai.router)
    app.include_router(agentv2.router)
    app.include_router(criabot.router)
    app.include_router(bytchat.router)
    # CriaBot's /bots/... shapes are claimed before Bytchat's /bots/...
    dialects = [
        chatbotkit.dialect,
        chatagent.dialect,
        openai.dialect,
        agentv2.dialect,
        criabot.dialect,
        bytchat.dialect,
    ]
    install_error_handlers(app, dialects)
    # Inside the request context (added later is outer): a request's records carry its id.
    app.add_middleware(RequestMonitor, dialects=dialects)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
        )
    # Outermost: a widget's preflight is answered from the bot's own allowed origins.
    app.add_middleware(WidgetCors)
    return app
