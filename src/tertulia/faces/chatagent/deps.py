"""Who is calling the ChatAgent face: `Authorization: Bearer <access token or API key>`."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tertulia.core.accounts import Principal
from tertulia.faces.deps import RuntimeDep, SessionDep, admit

bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login or an API key")


async def current_principal(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await admit(request, runtime, session, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
