"""The ChatBotKit face (chatbotkit-api.txt, docs/chatbotkit-face.md): singular resources with
action routes under both `/v1` and `/api/v1` (the SDKs call `/api/v1`), `{message, code}`
errors, cursor pages and `application/jsonl` streams. Built so far: bot, conversation (with
complete, send, receive, messages and ratings), dataset (with records, attached files and
search), file (with its upload flow), skillset (with abilities), contact, usage, tokens
(limited to routes), sessions, and partner users (and acting as them)."""

from fastapi import APIRouter

from tertulia.faces.chatbotkit import (
    accounts,
    bots,
    contacts,
    conversations,
    datasets,
    files,
    sessions,
    skillsets,
    spec,
    usage,
)
from tertulia.faces.chatbotkit.errors import dialect

resources = APIRouter()
for module in (bots, contacts, conversations, datasets, files, sessions, skillsets, usage):
    resources.include_router(module.router)
resources.include_router(accounts.tokens)
resources.include_router(accounts.users)

router = APIRouter()
router.include_router(resources, prefix="/api/v1")
router.include_router(resources, prefix="/v1", include_in_schema=False)
for prefix in ("/v1", "/api/v1"):
    router.include_router(spec.spec_router(), prefix=prefix)

__all__ = ["dialect", "router"]
