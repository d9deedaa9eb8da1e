"""The ChatAgent Python SDK (the `chatagent` package) under Tertulia's name:
`from tertulia.sdk import ChatAgentClient` is `from chatagent import ChatAgentClient`."""

from chatagent import *  # noqa: F403 - the same names, listed once, in chatagent
from chatagent import __all__ as __all__
