"""The Bytchat face (bytchat-api.txt): `/`, `/users/`, `/token`, `/bots/…`, `/chat/{bot_id}`."""

from tertulia.faces.bytchat.errors import dialect
from tertulia.faces.bytchat.routes import router

__all__ = ["dialect", "router"]
