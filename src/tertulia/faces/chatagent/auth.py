"""ChatAgent /auth: sign-up, login, the current user, and API keys."""

from fastapi import APIRouter, status

from tertulia.core import accounts
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    Done,
    LoginRequest,
    RegisterRequest,
    TokenResponse,
    UserInfo,
    UserPublic,
)
from tertulia.faces.deps import AnonymousLimit, RuntimeDep, SessionDep
from tertulia.runtime import Runtime
from tertulia.store.tables import Account

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(runtime: Runtime, account: Account) -> TokenResponse:
    issued = accounts.issue_access_token(account, runtime.secret, runtime.settings.access_token_ttl_seconds)
    return TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        user_info=UserInfo.model_validate(account, from_attributes=True),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, dependencies=[AnonymousLimit])
async def register(body: RegisterRequest, runtime: RuntimeDep, session: SessionDep) -> TokenResponse:
    account = await accounts.register(
        session,
        accounts.NewAccount(
            email=str(body.email),
            password=body.password,
            username=body.username,
            nickname=body.nickname,
            role=body.role,
            plan=runtime.settings.default_plan,
        ),
    )
    return _token_response(runtime, account)


@router.post("/login", dependencies=[AnonymousLimit])
async def login(body: LoginRequest, runtime: RuntimeDep, session: SessionDep) -> TokenResponse:
    account = await accounts.authenticate_password(session, body.username, body.password)
    return _token_response(runtime, account)


@router.get("/me")
async def me(principal: CurrentPrincipal) -> UserPublic:
    return UserPublic.model_validate(principal.account, from_attributes=True)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, principal: CurrentPrincipal, session: SessionDep
) -> ApiKeyCreated:
    issued = await accounts.create_api_key(
        session, principal, body.name, body.scopes, body.bot_id, body.expires_at
    )
    public = ApiKeyPublic.model_validate(issued.key, from_attributes=True)
    return ApiKeyCreated(**public.model_dump(), key=issued.secret)


@router.get("/api-keys")
async def list_api_keys(principal: CurrentPrincipal, session: SessionDep) -> ApiKeysPublic:
    keys = await accounts.list_api_keys(session, principal)
    return ApiKeysPublic(
        api_keys=[ApiKeyPublic.model_validate(key, from_attributes=True) for key in keys], total=len(keys)
    )


@router.delete("/api-keys/{key_id}")
async def revoke_api_key(key_id: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await accounts.revoke_api_key(session, principal, key_id)
    return Done(message="API key revoked")
