"""ChatAgent helpers: sign up users and authorise requests as them."""

from dataclasses import dataclass

import httpx
import pytest


@dataclass
class User:
    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, username: str) -> User:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return User(body["user_info"]["id"], username, body["access_token"])


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> User:
    return await sign_up(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> User:
    return await sign_up(client, "bob")
