"""`/v1/spec.json`: the OpenAPI document of the ChatBotKit face — only what is implemented,
with paths relative to `/v1` as ChatBotKit's own specification has them."""

from typing import Any

from fastapi import APIRouter, Request

from tertulia import __version__
from tertulia.faces.chatbotkit.errors import owns

PREFIX = "/api/v1"


def spec_router() -> APIRouter:
    """A router serving the face's spec at /spec.json (no credential needed)."""
    router = APIRouter(tags=["chatbotkit"])

    @router.get("/spec.json", include_in_schema=False)
    async def spec(request: Request) -> dict[str, Any]:
        whole = request.app.openapi()
        paths = {
            path[len(PREFIX) :]: operations
            for path, operations in whole.get("paths", {}).items()
            if path.startswith(PREFIX + "/") and owns(path)
        }
        return {
            "openapi": whole["openapi"],
            "info": {
                "title": "Tertulia — ChatBotKit API",
                "version": __version__,
                "description": "ChatBotKit's action-based API, as Tertulia serves it.",
            },
            "servers": [{"url": str(request.base_url).rstrip("/") + "/v1"}],
            "paths": paths,
            "components": {
                **whole.get("components", {}),
                "securitySchemes": {
                    "token": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "Authorization: Token … or Bearer …",
                    }
                },
            },
            "security": [{"token": []}],
        }

    return router
