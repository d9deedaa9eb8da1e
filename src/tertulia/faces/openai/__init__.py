"""The OpenAI-compatible face: `base_url=http://host:port/v1` for any OpenAI client."""

from tertulia.faces.openai.errors import dialect
from tertulia.faces.openai.routes import router

__all__ = ["dialect", "router"]
