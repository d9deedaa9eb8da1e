"""The CriaBot face (criabot-api.md): `/bots/{bot_name}/manage|documents|questions/…` and
`/bots/chats/…`, with its `{status, message, timestamp, code}` envelope."""

from tertulia.faces.criabot.errors import dialect
from tertulia.faces.criabot.routes import router

__all__ = ["dialect", "router"]
