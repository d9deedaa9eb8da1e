"""Where a client talks to and as whom: the base URL, the access token, the login it can
renew the token with, and the timeouts. Shared by the sync and the async client."""

from typing import Any

import httpx

from chatagent.calls import Call
from chatagent.errors import AuthenticationError, ChatAgentError

DEFAULT_BASE_URL = "http://localhost:8000/api/v1"
# A reply from a model on a CPU can take a while: a minute for each wait, ten seconds to connect.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USER_AGENT = "chatagent-python"


class Credentials:
    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        username: str | None,
        password: str | None,
        timeout: float | httpx.Timeout,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {base_url!r}")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self._login = (username, password) if username is not None and password is not None else None
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)

    def url(self, path: str) -> str:
        return self.base_url + path

    def headers(self, call: Call) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if call.authenticated and self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        return headers

    def can_log_in(self) -> bool:
        return self._login is not None

    def must_log_in(self) -> bool:
        return self.access_token is None and self._login is not None

    def login_pair(self) -> tuple[str, str]:
        if self._login is None:
            raise AuthenticationError("this client has no username and password to log in with")
        return self._login

    def keep_token(self, reply: Any) -> None:
        token = reply.get("access_token") if isinstance(reply, dict) else None
        if not isinstance(token, str) or not token:
            raise ChatAgentError("the server's login reply has no access_token", code="INVALID_RESPONSE")
        self.access_token = token

    def socket_token(self) -> str:
        if not self.access_token:
            raise AuthenticationError(
                "streaming needs an access token or API key: give one, or a username and password",
                code="UNAUTHORIZED",
                status_code=401,
            )
        return self.access_token
