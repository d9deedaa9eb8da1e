"""Request dependencies every face shares: the runtime, a session, admitting a caller."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.accounts import Principal, authenticate_token
from tertulia.core.errors import Forbidden, RateLimited, Unauthenticated
from tertulia.core.monitoring import bind_account
from tertulia.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.database.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def admit(request: Request, runtime: Runtime, session: AsyncSession, token: str | None) -> Principal:
    """Authenticates a credential (access token or API key) and counts it against its plan."""
    if not token:
        raise Unauthenticated("missing credentials")
    principal = await authenticate_token(session, token, runtime.secret)
    bind_account(principal.account_id)  # the request's records and log lines are this account's
    if not principal.allows_route(request.url.path):
        raise Forbidden("Request is not matching allowed routes")
    try:
        request.state.rate_limit = await runtime.rate_limiter.hit_account(
            principal.account_id, principal.account.plan
        )
    except RateLimited as limited:
        request.state.rate_limit = limited.limit
        raise
    return principal


async def admit_anonymous(request: Request, runtime: RuntimeDep) -> None:
    """Sign-up and login, limited per client address since nobody is known yet."""
    address = request.client.host if request.client else "unknown"
    try:
        request.state.rate_limit = await runtime.rate_limiter.hit_address(address)
    except RateLimited as limited:
        request.state.rate_limit = limited.limit
        raise


AnonymousLimit = Depends(admit_anonymous)


bearer = HTTPBearer(auto_error=False, description="A Tertulia access token or API key")


async def bearer_principal(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """`Authorization: Bearer <access token or API key>`, as ChatAgent and OpenAI send it."""
    return await admit(request, runtime, session, credentials.credentials if credentials else None)


BearerPrincipal = Annotated[Principal, Depends(bearer_principal)]
