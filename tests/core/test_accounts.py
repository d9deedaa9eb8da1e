"""Accounts, passwords, access tokens, API keys and sub-accounts, on a real database."""

import asyncio
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from tertulia.core.accounts import (
    NewAccount,
    Principal,
    authenticate_password,
    authenticate_token,
    create_api_key,
    create_sub_account,
    get_sub_account,
    issue_access_token,
    list_api_keys,
    list_sub_accounts,
    register,
    revoke_api_key,
    signing_secret,
)
from tertulia.core.bots import BotSettings, create_bot
from tertulia.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from tertulia.store.session import Database
from tertulia.store.tables import Account, ApiKey, Bot, ServerState, utcnow

SECRET = secrets.token_urlsafe(48)


async def new_account(database: Database, username: str, password: str | None = None) -> Account:
    async with database.session() as session:
        return await register(
            session, NewAccount(email=f"{username}@example.com", password=password, username=username)
        )


async def new_bot(database: Database, owner: Account, name: str) -> Bot:
    async with database.session() as session:
        return await create_bot(session, Principal(owner), BotSettings(name=name))


async def account_count(database: Database) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(Account)) or 0


@pytest.fixture
async def alice(database: Database) -> Account:
    return await new_account(database, "alice")


@pytest.fixture
async def bob(database: Database) -> Account:
    return await new_account(database, "bob")


# --- register -------------------------------------------------------------------------


async def test_register_stores_the_email_trimmed_and_lowercased(database: Database) -> None:
    async with database.session() as session:
        account = await register(session, NewAccount(email="  Ana.Lima@Example.COM ", password=None))

    async with database.session() as session:
        stored = await session.get(Account, account.id)
    assert stored is not None
    assert stored.email == "ana.lima@example.com"
    assert stored.plan == "standard"
    assert stored.role == "user"
    assert stored.is_active is True
    assert stored.parent_id is None


async def test_register_derives_a_unique_username_from_the_email_when_none_is_given(
    database: Database,
) -> None:
    async with database.session() as session:
        first = await register(session, NewAccount(email="maria@one.example", password=None))
        second = await register(session, NewAccount(email="maria@two.example", password=None))

    assert first.username.startswith("maria")
    assert second.username.startswith("maria")
    assert first.username != second.username


async def test_register_keeps_a_chosen_username(database: Database) -> None:
    async with database.session() as session:
        account = await register(
            session, NewAccount(email="c@example.com", password=None, username="carla", nickname="Carla")
        )
    assert (account.username, account.nickname) == ("carla", "Carla")


async def test_register_refuses_an_email_already_taken_in_any_case(
    database: Database, alice: Account
) -> None:
    async with database.session() as session:
        with pytest.raises(Conflict) as refused:
            await register(session, NewAccount(email=" ALICE@example.com", password=None, username="other"))
    assert refused.value.details["field"] == "email"
    assert await account_count(database) == 1


async def test_register_refuses_a_username_already_taken(database: Database, alice: Account) -> None:
    async with database.session() as session:
        with pytest.raises(Conflict) as refused:
            await register(session, NewAccount(email="new@example.com", password=None, username="alice"))
    assert refused.value.details["field"] == "username"
    assert await account_count(database) == 1


async def test_register_refuses_to_let_a_user_choose_another_role(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await register(session, NewAccount(email="eve@example.com", password=None, role="admin"))
    assert await account_count(database) == 0


async def test_register_accepts_known_plans_and_refuses_unknown_ones(database: Database) -> None:
    async with database.session() as session:
        premium = await register(session, NewAccount(email="p@example.com", password=None, plan="premium"))
        with pytest.raises(Invalid) as refused:
            await register(session, NewAccount(email="g@example.com", password=None, plan="gold"))
    assert premium.plan == "premium"
    assert refused.value.details["field"] == "plan"
    assert await account_count(database) == 1


# --- passwords ------------------------------------------------------------------------


@pytest.fixture
async def dora(database: Database) -> Account:
    return await new_account(database, "dora", password="correct horse battery")


async def test_password_login_works_with_the_username_or_the_email(database: Database, dora: Account) -> None:
    async with database.session() as session:
        by_username = await authenticate_password(session, "dora", "correct horse battery")
        by_email = await authenticate_password(session, " Dora@Example.com ", "correct horse battery")
    assert by_username.id == dora.id
    assert by_email.id == dora.id


async def test_wrong_password_and_unknown_user_get_the_same_answer(database: Database, dora: Account) -> None:
    async with database.session() as session:
        with pytest.raises(Unauthenticated) as wrong_password:
            await authenticate_password(session, "dora", "wrong horse")
        with pytest.raises(Unauthenticated) as unknown_user:
            await authenticate_password(session, "nobody", "correct horse battery")
    assert wrong_password.value.message == unknown_user.value.message


async def test_a_username_spelled_like_someones_email_does_not_capture_their_login(
    database: Database,
) -> None:
    # Eve tries to sign up first, choosing Bob's email address as her username.
    async with database.session() as session:
        with pytest.raises(Invalid) as refused:
            await register(
                session,
                NewAccount(email="eve@example.com", password="eve's password", username="bob@example.com"),
            )
        assert refused.value.details["field"] == "username"
        bob = await register(
            session, NewAccount(email="bob@example.com", password="bob's password", username="bob")
        )
    async with database.session() as session:
        logged_in = await authenticate_password(session, "bob@example.com", "bob's password")
    assert logged_in.id == bob.id


async def test_an_account_without_a_password_cannot_log_in(database: Database, alice: Account) -> None:
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_password(session, "alice", "")


async def test_a_disabled_account_cannot_log_in(database: Database, dora: Account) -> None:
    async with database.session() as session:
        await session.execute(update(Account).where(Account.id == dora.id).values(is_active=False))
        await session.commit()
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_password(session, "dora", "correct horse battery")


# --- access tokens --------------------------------------------------------------------


async def test_an_access_token_authenticates_its_account_with_full_access(
    database: Database, alice: Account
) -> None:
    issued = issue_access_token(alice, SECRET, ttl_seconds=3600)
    async with database.session() as session:
        principal = await authenticate_token(session, issued.token, SECRET)
    assert issued.expires_in == 3600
    assert principal.account_id == alice.id
    assert principal.scopes is None
    assert principal.bot_id is None


async def test_an_expired_access_token_is_refused(database: Database, alice: Account) -> None:
    issued = issue_access_token(alice, SECRET, ttl_seconds=-1)
    async with database.session() as session:
        with pytest.raises(Unauthenticated, match="expired"):
            await authenticate_token(session, issued.token, SECRET)


async def test_a_token_signed_with_another_secret_is_refused(database: Database, alice: Account) -> None:
    issued = issue_access_token(alice, secrets.token_urlsafe(48), ttl_seconds=3600)
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, issued.token, SECRET)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "tk_not-a-key", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
async def test_garbage_tokens_are_refused(database: Database, alice: Account, token: str) -> None:
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, token, SECRET)


async def test_the_token_of_a_deleted_account_is_refused(database: Database, alice: Account) -> None:
    issued = issue_access_token(alice, SECRET, ttl_seconds=3600)
    async with database.session() as session:
        await session.execute(delete(Account).where(Account.id == alice.id))
        await session.commit()
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, issued.token, SECRET)


async def test_the_token_of_a_disabled_account_is_refused(database: Database, alice: Account) -> None:
    issued = issue_access_token(alice, SECRET, ttl_seconds=3600)
    async with database.session() as session:
        await session.execute(update(Account).where(Account.id == alice.id).values(is_active=False))
        await session.commit()
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, issued.token, SECRET)


# --- the signing secret ---------------------------------------------------------------


async def test_the_signing_secret_is_generated_once_and_kept(database: Database) -> None:
    async with database.session() as session:
        first = await signing_secret(session, None)
    async with database.session() as session:
        again = await signing_secret(session, None)
    other_process = Database(database.url)
    try:
        async with other_process.session() as session:
            from_elsewhere = await signing_secret(session, None)
            stored = await session.scalar(select(func.count()).select_from(ServerState))
    finally:
        await other_process.dispose()

    assert len(first) >= 32
    assert again == first
    assert from_elsewhere == first
    assert stored == 1


async def test_processes_starting_together_agree_on_one_signing_secret(database: Database) -> None:
    processes = [Database(database.url) for _ in range(3)]

    async def secret_of(process: Database) -> str:
        async with process.session() as session:
            return await signing_secret(session, None)

    try:
        found = await asyncio.gather(*(secret_of(process) for process in processes))
    finally:
        for process in processes:
            await process.dispose()
    assert len(set(found)) == 1


async def test_a_configured_signing_secret_wins_over_the_stored_one(database: Database) -> None:
    configured = secrets.token_urlsafe(48)
    async with database.session() as session:
        generated = await signing_secret(session, None)
        assert await signing_secret(session, configured) == configured
        assert await signing_secret(session, None) == generated


# --- API keys -------------------------------------------------------------------------


async def test_a_new_key_shows_its_secret_once_and_stores_only_a_hash(
    database: Database, alice: Account
) -> None:
    async with database.session() as session:
        issued = await create_api_key(session, Principal(alice), "ci", scopes=["bots:read"])

    async with database.session() as session:
        row = (await session.execute(select(ApiKey.__table__).where(ApiKey.id == issued.key.id))).one()
    stored = row._asdict()
    assert issued.secret.startswith("tk_")
    assert len(issued.secret) > 32
    assert stored["secret_hash"] and stored["secret_hash"] != issued.secret
    assert all(issued.secret not in str(value) for value in stored.values())
    assert issued.secret.startswith(stored["prefix"])
    assert stored["account_id"] == alice.id
    assert stored["name"] == "ci"


async def test_a_key_authenticates_as_its_account_with_its_scopes_and_bot(
    database: Database, alice: Account
) -> None:
    bot = await new_bot(database, alice, "helper")
    async with database.session() as session:
        issued = await create_api_key(
            session, Principal(alice), "widget", scopes=["conversations:write", "bots:read"], bot_id=bot.id
        )
    async with database.session() as session:
        principal = await authenticate_token(session, issued.secret, SECRET)
    assert principal.account_id == alice.id
    assert principal.scopes == frozenset({"conversations:write", "bots:read"})
    assert principal.bot_id == bot.id
    assert principal.key_id == issued.key.id


async def test_a_key_without_scopes_gives_full_access(database: Database, alice: Account) -> None:
    async with database.session() as session:
        issued = await create_api_key(session, Principal(alice), "admin")
        principal = await authenticate_token(session, issued.secret, SECRET)
    assert principal.scopes is None
    assert principal.bot_id is None


async def test_using_a_key_records_when_it_was_last_used(database: Database, alice: Account) -> None:
    async with database.session() as session:
        issued = await create_api_key(session, Principal(alice), "ci")
    assert issued.key.last_used_at is None
    before = utcnow()
    async with database.session() as session:
        await authenticate_token(session, issued.secret, SECRET)
    async with database.session() as session:
        stored = await session.get(ApiKey, issued.key.id)
    assert stored is not None and stored.last_used_at is not None
    assert before <= stored.last_used_at <= utcnow()


async def test_a_revoked_key_is_refused(database: Database, alice: Account) -> None:
    async with database.session() as session:
        issued = await create_api_key(session, Principal(alice), "ci")
        revoked = await revoke_api_key(session, Principal(alice), issued.key.id)
    assert revoked.revoked_at is not None
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, issued.secret, SECRET)


async def test_an_expired_key_is_refused(database: Database, alice: Account) -> None:
    async with database.session() as session:
        issued = await create_api_key(
            session, Principal(alice), "short-lived", expires_at=utcnow() + timedelta(hours=1)
        )
        assert (await authenticate_token(session, issued.secret, SECRET)).key_id == issued.key.id
        # Time passes: the key's expiry is now behind us.
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == issued.key.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    async with database.session() as session:
        with pytest.raises(Unauthenticated):
            await authenticate_token(session, issued.secret, SECRET)


async def test_a_key_cannot_be_created_already_expired(database: Database, alice: Account) -> None:
    async with database.session() as session:
        with pytest.raises(Invalid):
            await create_api_key(session, Principal(alice), "old", expires_at=utcnow() - timedelta(minutes=1))
        assert await list_api_keys(session, Principal(alice)) == []


async def test_an_unknown_scope_is_invalid(database: Database, alice: Account) -> None:
    async with database.session() as session:
        with pytest.raises(Invalid) as refused:
            await create_api_key(session, Principal(alice), "ci", scopes=["bots:read", "bots:destroy"])
        assert await list_api_keys(session, Principal(alice)) == []
    assert refused.value.details["unknown"] == ["bots:destroy"]


async def test_a_scoped_credential_cannot_mint_a_key_with_more_scopes(
    database: Database, alice: Account
) -> None:
    scoped = Principal(alice, scopes=frozenset({"keys:read", "keys:write", "bots:read"}))
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await create_api_key(session, scoped, "wider", scopes=["bots:read", "bots:write"])
        narrower = await create_api_key(session, scoped, "narrower", scopes=["bots:read"])
        assert [key.id for key in await list_api_keys(session, Principal(alice))] == [narrower.key.id]
    assert narrower.key.scopes == ["bots:read"]


async def test_a_credential_without_the_keys_write_scope_cannot_create_keys(
    database: Database, alice: Account
) -> None:
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await create_api_key(session, Principal(alice, scopes=frozenset({"keys:read"})), "k")


async def test_keys_made_by_a_bot_bound_credential_stay_bound_to_that_bot(
    database: Database, alice: Account
) -> None:
    helper = await new_bot(database, alice, "helper")
    other = await new_bot(database, alice, "other")
    bound = Principal(alice, bot_id=helper.id)
    async with database.session() as session:
        issued = await create_api_key(session, bound, "child")
        with pytest.raises(Forbidden):
            await create_api_key(session, bound, "escape", bot_id=other.id)
    async with database.session() as session:
        principal = await authenticate_token(session, issued.secret, SECRET)
    assert issued.key.bot_id == helper.id
    assert principal.bot_id == helper.id


async def test_a_key_cannot_be_bound_to_another_accounts_bot(
    database: Database, alice: Account, bob: Account
) -> None:
    bobs_bot = await new_bot(database, bob, "bobs")
    async with database.session() as session:
        with pytest.raises(NotFound):
            await create_api_key(session, Principal(alice), "sneaky", bot_id=bobs_bot.id)
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0


async def test_listing_keys_hides_revoked_keys_and_other_accounts_keys(
    database: Database, alice: Account, bob: Account
) -> None:
    async with database.session() as session:
        kept = await create_api_key(session, Principal(alice), "kept")
        gone = await create_api_key(session, Principal(alice), "gone")
        await create_api_key(session, Principal(bob), "bobs")
        await revoke_api_key(session, Principal(alice), gone.key.id)

    async with database.session() as session:
        listed = await list_api_keys(session, Principal(alice))
        with_revoked = await list_api_keys(session, Principal(alice), include_revoked=True)
    assert [key.name for key in listed] == ["kept"]
    assert {key.id for key in with_revoked} == {kept.key.id, gone.key.id}


async def test_revoking_another_accounts_key_is_not_found_and_leaves_it_working(
    database: Database, alice: Account, bob: Account
) -> None:
    async with database.session() as session:
        bobs = await create_api_key(session, Principal(bob), "bobs")
        with pytest.raises(NotFound):
            await revoke_api_key(session, Principal(alice), bobs.key.id)
    async with database.session() as session:
        assert (await authenticate_token(session, bobs.secret, SECRET)).account_id == bob.id


# --- principals -----------------------------------------------------------------------


async def test_principal_scopes_and_bot_binding(alice: Account) -> None:
    full = Principal(alice)
    reader = Principal(alice, scopes=frozenset({"bots:read"}))
    bound = Principal(alice, bot_id="bot_1")

    full.require("bots:write")
    full.require_any_bot()
    reader.require("bots:read")
    with pytest.raises(Forbidden) as lacking:
        reader.require("bots:write")
    assert lacking.value.details["scope"] == "bots:write"
    bound.require("bots:write")
    with pytest.raises(Forbidden):
        bound.require_any_bot()


# --- sub-accounts ---------------------------------------------------------------------


async def test_a_parent_creates_lists_and_reads_its_sub_accounts(
    database: Database, alice: Account, bob: Account
) -> None:
    async with database.session() as session:
        first = await create_sub_account(
            session, Principal(alice), NewAccount(email="Shop1@Example.com", password=None)
        )
        second = await create_sub_account(
            session, Principal(alice), NewAccount(email="shop2@example.com", password=None)
        )
        await create_sub_account(session, Principal(bob), NewAccount(email="bobs@example.com", password=None))

    async with database.session() as session:
        listed = await list_sub_accounts(session, Principal(alice))
        fetched = await get_sub_account(session, Principal(alice), first.id)
    assert [account.id for account in listed] == [first.id, second.id]
    assert fetched.email == "shop1@example.com"
    assert fetched.parent_id == alice.id


async def test_a_sub_account_cannot_have_sub_accounts(database: Database, alice: Account) -> None:
    async with database.session() as session:
        child = await create_sub_account(
            session, Principal(alice), NewAccount(email="child@example.com", password=None)
        )
        with pytest.raises(Forbidden):
            await create_sub_account(
                session, Principal(child), NewAccount(email="grandchild@example.com", password=None)
            )
    assert await account_count(database) == 2


async def test_reading_an_account_that_is_not_ones_sub_account_is_not_found(
    database: Database, alice: Account, bob: Account
) -> None:
    async with database.session() as session:
        bobs_child = await create_sub_account(
            session, Principal(bob), NewAccount(email="bobs-child@example.com", password=None)
        )
        for stranger in (bob.id, bobs_child.id, alice.id, "usr_missing"):
            with pytest.raises(NotFound):
                await get_sub_account(session, Principal(alice), stranger)


async def test_sub_accounts_need_the_accounts_scopes(database: Database, alice: Account) -> None:
    no_accounts = Principal(alice, scopes=frozenset({"bots:read"}))
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await create_sub_account(session, no_accounts, NewAccount(email="x@example.com", password=None))
        with pytest.raises(Forbidden):
            await list_sub_accounts(session, no_accounts)
    assert await account_count(database) == 1
