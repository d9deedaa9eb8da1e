"""Conversations and their messages, always within the caller's account."""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.accounts import NewAccount, Principal, register
from tertulia.core.bots import BotSettings, create_bot
from tertulia.core.conversations import (
    ConversationDraft,
    ConversationFilters,
    add_message,
    create_conversation,
    delete_conversation,
    get_conversation,
    list_conversations,
    list_messages,
    set_status,
)
from tertulia.core.errors import Forbidden, Invalid, NotFound
from tertulia.store.session import Database
from tertulia.store.tables import Account, Bot, Conversation, Message

EVERYTHING = ConversationFilters()


async def new_account(database: Database, username: str) -> Account:
    async with database.session() as session:
        return await register(
            session, NewAccount(email=f"{username}@example.com", password=None, username=username)
        )


async def new_bot(database: Database, owner: Account, name: str) -> Bot:
    async with database.session() as session:
        return await create_bot(session, Principal(owner), BotSettings(name=name))


async def new_conversation(database: Database, owner: Account, bot: Bot, **draft: Any) -> Conversation:
    async with database.session() as session:
        return await create_conversation(session, Principal(owner), ConversationDraft(bot_id=bot.id, **draft))


async def rows(database: Database, model: Any, *where: Any) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
async def alice(database: Database) -> Account:
    return await new_account(database, "alice")


@pytest.fixture
async def bob(database: Database) -> Account:
    return await new_account(database, "bob")


@pytest.fixture
async def helper(database: Database, alice: Account) -> Bot:
    return await new_bot(database, alice, "Helper")


# --- create and read ------------------------------------------------------------------


async def test_a_conversation_is_created_open_with_its_details(
    database: Database, alice: Account, helper: Bot
) -> None:
    created = await new_conversation(
        database,
        alice,
        helper,
        title="Order 42",
        platform="telegram",
        platform_chat_id="chat-7",
        visitor_id="visitor-1",
        metadata={"order": 42},
    )
    async with database.session() as session:
        fetched = await get_conversation(session, Principal(alice), created.id)
    assert (fetched.bot_id, fetched.account_id, fetched.status) == (helper.id, alice.id, "open")
    assert (fetched.title, fetched.platform, fetched.platform_chat_id) == ("Order 42", "telegram", "chat-7")
    assert (fetched.visitor_id, fetched.meta) == ("visitor-1", {"order": 42})


async def test_a_conversation_cannot_be_started_with_another_accounts_bot(
    database: Database, alice: Account, bob: Account
) -> None:
    bobs = await new_bot(database, bob, "Bobs")
    with pytest.raises(NotFound):
        await new_conversation(database, alice, bobs)
    assert await rows(database, Conversation) == 0


async def test_a_bot_bound_credential_talks_only_to_its_bot(
    database: Database, alice: Account, helper: Bot
) -> None:
    sibling = await new_bot(database, alice, "Sibling")
    elsewhere = await new_conversation(database, alice, sibling)
    bound = Principal(alice, bot_id=helper.id)
    async with database.session() as session:
        mine = await create_conversation(session, bound, ConversationDraft(bot_id=helper.id))
        with pytest.raises(NotFound):
            await create_conversation(session, bound, ConversationDraft(bot_id=sibling.id))
        with pytest.raises(NotFound):
            await get_conversation(session, bound, elsewhere.id)
        page = await list_conversations(session, bound, EVERYTHING, limit=10, offset=0)
    assert [summary.conversation.id for summary in page.items] == [mine.id]


async def test_conversation_scopes_are_required(database: Database, alice: Account, helper: Bot) -> None:
    conversation = await new_conversation(database, alice, helper)
    reader = Principal(alice, scopes=frozenset({"conversations:read", "bots:read"}))
    async with database.session() as session:
        assert (await get_conversation(session, reader, conversation.id)).id == conversation.id
        with pytest.raises(Forbidden):
            await create_conversation(session, reader, ConversationDraft(bot_id=helper.id))
        with pytest.raises(Forbidden):
            await add_message(session, reader, conversation.id, "user", "hi")
        with pytest.raises(Forbidden):
            await delete_conversation(session, reader, conversation.id)
        with pytest.raises(Forbidden):
            await get_conversation(
                session, Principal(alice, scopes=frozenset({"bots:read"})), conversation.id
            )
    assert await rows(database, Conversation) == 1
    assert await rows(database, Message) == 0


# --- list -----------------------------------------------------------------------------


async def test_listing_filters_by_bot_and_status(
    database: Database, alice: Account, bob: Account, helper: Bot
) -> None:
    other = await new_bot(database, alice, "Other")
    open_one = await new_conversation(database, alice, helper)
    resolved = await new_conversation(database, alice, helper)
    on_other = await new_conversation(database, alice, other)
    await new_conversation(database, bob, await new_bot(database, bob, "Bobs"))
    async with database.session() as session:
        await set_status(session, Principal(alice), resolved.id, "resolved")

    async def listed(filters: ConversationFilters) -> set[str]:
        async with database.session() as session:
            page = await list_conversations(session, Principal(alice), filters, limit=10, offset=0)
        assert page.total == len(page.items)
        return {summary.conversation.id for summary in page.items}

    assert await listed(EVERYTHING) == {open_one.id, resolved.id, on_other.id}
    assert await listed(ConversationFilters(bot_id=helper.id)) == {open_one.id, resolved.id}
    assert await listed(ConversationFilters(status="resolved")) == {resolved.id}
    assert await listed(ConversationFilters(bot_id=helper.id, status="open")) == {open_one.id}
    assert await listed(ConversationFilters(status="unresolved")) == set()
    with pytest.raises(Invalid):
        await listed(ConversationFilters(status="archived"))


async def test_list_summaries_count_messages_and_tell_the_last_ones_time(
    database: Database, alice: Account, helper: Bot
) -> None:
    owner = Principal(alice)
    busy = await new_conversation(database, alice, helper, title="busy")
    quiet = await new_conversation(database, alice, helper, title="quiet")
    async with database.session() as session:
        await add_message(session, owner, busy.id, "user", "hello")
        await add_message(session, owner, busy.id, "assistant", "hi there")
        last = await add_message(session, owner, busy.id, "user", "bye")

    async with database.session() as session:
        page = await list_conversations(session, owner, EVERYTHING, limit=10, offset=0)
    summaries = {summary.conversation.title: summary for summary in page.items}
    assert (summaries["busy"].message_count, summaries["busy"].last_message_at) == (3, last.created_at)
    assert (summaries["quiet"].message_count, summaries["quiet"].last_message_at) == (0, None)
    # The conversation with the latest message comes first, though it was started first.
    assert [summary.conversation.id for summary in page.items] == [busy.id, quiet.id]


async def test_listing_conversations_pages_with_the_total(
    database: Database, alice: Account, helper: Bot
) -> None:
    created = [await new_conversation(database, alice, helper, title=f"c{n}") for n in range(5)]
    seen: list[str] = []
    async with database.session() as session:
        for offset in (0, 2, 4):
            page = await list_conversations(session, Principal(alice), EVERYTHING, limit=2, offset=offset)
            assert (page.total, page.limit, page.offset) == (5, 2, offset)
            seen += [summary.conversation.id for summary in page.items]
    assert sorted(seen) == sorted(conversation.id for conversation in created)


# --- status ---------------------------------------------------------------------------


async def test_setting_a_known_status_is_kept_and_an_unknown_one_refused(
    database: Database, alice: Account, helper: Bot
) -> None:
    conversation = await new_conversation(database, alice, helper)
    async with database.session() as session:
        await set_status(session, Principal(alice), conversation.id, "unresolved")
        with pytest.raises(Invalid) as refused:
            await set_status(session, Principal(alice), conversation.id, "archived")
    async with database.session() as session:
        stored = await get_conversation(session, Principal(alice), conversation.id)
    assert refused.value.details["field"] == "status"
    assert stored.status == "unresolved"


# --- messages -------------------------------------------------------------------------


async def test_messages_are_listed_in_the_order_they_were_added_with_paging(
    database: Database, alice: Account, helper: Bot
) -> None:
    owner = Principal(alice)
    conversation = await new_conversation(database, alice, helper)
    turns = [
        ("user", "one"),
        ("assistant", "two"),
        ("user", "three"),
        ("tool", "four"),
        ("assistant", "five"),
    ]
    async with database.session() as session:
        for role, content in turns:
            await add_message(session, owner, conversation.id, role, content, token_count=len(content))

    async with database.session() as session:
        everything = await list_messages(session, owner, conversation.id, limit=10, offset=0)
        middle = await list_messages(session, owner, conversation.id, limit=2, offset=1)
        beyond = await list_messages(session, owner, conversation.id, limit=2, offset=5)
    assert [(m.role, m.content) for m in everything.items] == turns
    assert [m.token_count for m in everything.items] == [3, 3, 5, 4, 4]
    assert everything.total == 5
    assert ([m.content for m in middle.items], middle.total) == (["two", "three"], 5)
    assert (beyond.items, beyond.total) == ([], 5)


async def test_a_message_keeps_its_type_and_metadata(database: Database, alice: Account, helper: Bot) -> None:
    conversation = await new_conversation(database, alice, helper)
    async with database.session() as session:
        await add_message(
            session,
            Principal(alice),
            conversation.id,
            "assistant",
            "see attached",
            metadata={"sources": [{"document": "manual.pdf", "score": 0.9}]},
            message_type="file",
        )
    async with database.session() as session:
        [message] = (
            await list_messages(session, Principal(alice), conversation.id, limit=10, offset=0)
        ).items
    assert message.message_type == "file"
    assert message.meta == {"sources": [{"document": "manual.pdf", "score": 0.9}]}


async def test_a_message_with_an_unknown_role_is_refused(
    database: Database, alice: Account, helper: Bot
) -> None:
    conversation = await new_conversation(database, alice, helper)
    async with database.session() as session:
        with pytest.raises(Invalid) as refused:
            await add_message(session, Principal(alice), conversation.id, "narrator", "once upon a time")
    assert refused.value.details["field"] == "role"
    assert await rows(database, Message) == 0


# --- delete ---------------------------------------------------------------------------


async def test_deleting_a_conversation_removes_its_messages_only(
    database: Database, alice: Account, helper: Bot
) -> None:
    owner = Principal(alice)
    doomed = await new_conversation(database, alice, helper)
    kept = await new_conversation(database, alice, helper)
    async with database.session() as session:
        await add_message(session, owner, doomed.id, "user", "forget me")
        await add_message(session, owner, doomed.id, "assistant", "ok")
        await add_message(session, owner, kept.id, "user", "remember me")
        await delete_conversation(session, owner, doomed.id)

    async with database.session() as session:
        with pytest.raises(NotFound):
            await get_conversation(session, owner, doomed.id)
    assert await rows(database, Message, Message.conversation_id == doomed.id) == 0
    assert await rows(database, Message, Message.conversation_id == kept.id) == 1


# --- another account's conversation -----------------------------------------------------

Action = Callable[[AsyncSession, Principal, str], Awaitable[object]]

ACTIONS: dict[str, Action] = {
    "get": get_conversation,
    "set_status": lambda session, actor, cid: set_status(session, actor, cid, "resolved"),
    "add_message": lambda session, actor, cid: add_message(session, actor, cid, "user", "intrusion"),
    "list_messages": lambda session, actor, cid: list_messages(session, actor, cid, limit=10, offset=0),
    "delete": delete_conversation,
}


@pytest.mark.parametrize("action", ACTIONS.values(), ids=ACTIONS.keys())
async def test_another_accounts_conversation_is_not_found(
    database: Database, alice: Account, bob: Account, helper: Bot, action: Action
) -> None:
    conversation = await new_conversation(database, alice, helper)
    async with database.session() as session:
        await add_message(session, Principal(alice), conversation.id, "user", "private")

    async with database.session() as session:
        with pytest.raises(NotFound):
            await action(session, Principal(bob), conversation.id)
        bobs_view = await list_conversations(session, Principal(bob), EVERYTHING, limit=10, offset=0)

    async with database.session() as session:
        intact = await get_conversation(session, Principal(alice), conversation.id)
        messages = await list_messages(session, Principal(alice), conversation.id, limit=10, offset=0)
    assert (bobs_view.items, bobs_view.total) == ([], 0)
    assert intact.status == "open"
    assert [message.content for message in messages.items] == ["private"]
