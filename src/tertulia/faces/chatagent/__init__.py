"""The ChatAgent face (`/api/v1`, chatagent-api.md): the native and richest dialect."""

from fastapi import APIRouter

from tertulia.faces.chatagent import (
    auth,
    bots,
    conversations,
    knowledge,
    models,
    monitoring,
    multimodal,
    plugins,
    websocket,
    widget,
)
from tertulia.faces.chatagent.errors import dialect

router = APIRouter(prefix="/api/v1")
for module in (
    auth,
    bots,
    conversations,
    knowledge,
    models,
    monitoring,
    multimodal,
    plugins,
    websocket,
    widget,
):
    router.include_router(module.router)
router.include_router(knowledge.jobs_router)
router.include_router(widget.settings_router)

__all__ = ["dialect", "router"]
