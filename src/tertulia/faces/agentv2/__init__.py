"""The Agent v2 face (agent-v2-api.txt): `/api/v2/agents`, `/agent/{id}/chat`,
`/conversations`, `/datastores`, errors as `{"error": {"code", "message"}}`."""

from tertulia.faces.agentv2.errors import dialect
from tertulia.faces.agentv2.routes import router

__all__ = ["dialect", "router"]
