"""Bots, their toolbox of models, task routing and knowledge bases, within one account."""

from typing import Any

import pytest
from sqlalchemy import func, select

from tertulia.core.accounts import NewAccount, Principal, create_api_key, register
from tertulia.core.bots import (
    BotFilters,
    BotSettings,
    bot_activity,
    create_bot,
    delete_bot,
    get_bot,
    get_bot_by_name,
    list_bots,
    set_running,
    update_bot,
)
from tertulia.core.catalog import ModelChoice, route
from tertulia.core.conversations import ConversationDraft, add_message, create_conversation
from tertulia.core.errors import Conflict, Forbidden, Invalid, NotFound
from tertulia.core.knowledge.bases import (
    KnowledgeBaseDraft,
    create_knowledge_base,
    delete_knowledge_base,
    get_knowledge_base,
    list_knowledge_bases,
)
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.toolbox import list_models, remove_model, set_model
from tertulia.providers.registry import ModelRegistry
from tertulia.settings import Settings
from tertulia.store.session import Database
from tertulia.store.tables import (
    Account,
    ApiKey,
    Bot,
    Conversation,
    KnowledgeBase,
    Message,
    ModelSpec,
    bot_knowledge_bases,
)

EVERYTHING = BotFilters()

MODELS = ModelRegistry(Settings())  # knows which embedding models this server can reach
VECTORS = VectorIndex(None)  # the built-in index only


async def new_account(database: Database, username: str) -> Account:
    async with database.session() as session:
        return await register(
            session, NewAccount(email=f"{username}@example.com", password=None, username=username)
        )


async def new_bot(database: Database, owner: Account, name: str, **settings: Any) -> Bot:
    async with database.session() as session:
        return await create_bot(session, Principal(owner), BotSettings(name=name, **settings))


async def new_base(database: Database, owner: Account, name: str) -> KnowledgeBase:
    async with database.session() as session:
        return await create_knowledge_base(
            session, Principal(owner), KnowledgeBaseDraft(name=name), MODELS, VECTORS
        )


async def stored_bot(database: Database, bot_id: str) -> Bot | None:
    async with database.session() as session:
        return await session.get(Bot, bot_id)


async def rows(database: Database, model: Any, *where: Any) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def names(database: Database, owner: Account, filters: BotFilters) -> set[str]:
    async with database.session() as session:
        page = await list_bots(session, Principal(owner), filters, limit=100, offset=0)
    return {bot.name for bot in page.items}


@pytest.fixture
async def alice(database: Database) -> Account:
    return await new_account(database, "alice")


@pytest.fixture
async def bob(database: Database) -> Account:
    return await new_account(database, "bob")


# --- create, read, list ---------------------------------------------------------------


async def test_a_created_bot_is_stored_with_its_settings_and_defaults(
    database: Database, alice: Account
) -> None:
    async with database.session() as session:
        bot = await create_bot(
            session,
            Principal(alice),
            BotSettings(
                name="Support",
                description="answers questions",
                platform_type="telegram",
                plugins=["calculator", "weather", "calculator"],
                temperature=0.2,
                llm_provider="openai",
                llm_model="gpt-4o-mini",
            ),
        )

    async with database.session() as session:
        fetched = await get_bot(session, Principal(alice), bot.id)
        by_name = await get_bot_by_name(session, Principal(alice), "Support")
    assert by_name.id == fetched.id == bot.id
    assert fetched.account_id == alice.id
    assert fetched.description == "answers questions"
    assert fetched.platform_type == "telegram"
    assert fetched.plugins == ["calculator", "weather"]
    assert (fetched.llm_provider, fetched.llm_model, fetched.temperature) == ("openai", "gpt-4o-mini", 0.2)
    assert fetched.is_active is False
    assert fetched.started_at is None
    assert fetched.top_k == 8
    assert fetched.knowledge_bases == []


async def test_a_bot_name_is_unique_within_an_account_only(
    database: Database, alice: Account, bob: Account
) -> None:
    await new_bot(database, alice, "Helper")
    with pytest.raises(Conflict):
        await new_bot(database, alice, "Helper")
    bobs = await new_bot(database, bob, "Helper")

    assert bobs.account_id == bob.id
    assert await rows(database, Bot, Bot.account_id == alice.id) == 1


async def test_renaming_a_bot_to_a_taken_name_conflicts(database: Database, alice: Account) -> None:
    await new_bot(database, alice, "First")
    second = await new_bot(database, alice, "Second")
    async with database.session() as session:
        with pytest.raises(Conflict):
            await update_bot(session, Principal(alice), second.id, {"name": "First"})
        renamed = await update_bot(session, Principal(alice), second.id, {"name": "Second"})
    assert renamed.name == "Second"
    assert await names(database, alice, EVERYTHING) == {"First", "Second"}


async def test_another_accounts_bot_is_not_found(database: Database, alice: Account, bob: Account) -> None:
    bobs = await new_bot(database, bob, "Bobs")
    async with database.session() as session:
        with pytest.raises(NotFound):
            await get_bot(session, Principal(alice), bobs.id)
        with pytest.raises(NotFound):
            await get_bot_by_name(session, Principal(alice), "Bobs")
        with pytest.raises(NotFound):
            await update_bot(session, Principal(alice), bobs.id, {"description": "mine now"})
        with pytest.raises(NotFound):
            await delete_bot(session, Principal(alice), bobs.id)
        assert (await list_bots(session, Principal(alice), EVERYTHING, limit=10, offset=0)).total == 0
    still = await stored_bot(database, bobs.id)
    assert still is not None and still.description == ""


async def test_search_looks_in_name_and_description_ignoring_case(database: Database, alice: Account) -> None:
    await new_bot(database, alice, "Recipe Helper", description="cooks dinner")
    await new_bot(database, alice, "Travel", description="Plans RECIPES for trips")
    await new_bot(database, alice, "Weather")

    assert await names(database, alice, BotFilters(search="recipe")) == {"Recipe Helper", "Travel"}
    assert await names(database, alice, BotFilters(search="DINNER")) == {"Recipe Helper"}
    assert await names(database, alice, BotFilters(search="nothing like it")) == set()


async def test_search_treats_percent_underscore_and_backslash_literally(
    database: Database, alice: Account
) -> None:
    await new_bot(database, alice, "100% uptime")
    await new_bot(database, alice, "1000 uptime")
    await new_bot(database, alice, "snake_case")
    await new_bot(database, alice, "snakeXcase")
    await new_bot(database, alice, "plain", description="C:\\bots")

    assert await names(database, alice, BotFilters(search="%")) == {"100% uptime"}
    assert await names(database, alice, BotFilters(search="0% up")) == {"100% uptime"}
    assert await names(database, alice, BotFilters(search="_")) == {"snake_case"}
    assert await names(database, alice, BotFilters(search="e_c")) == {"snake_case"}
    assert await names(database, alice, BotFilters(search="\\")) == {"plain"}


async def test_filters_by_platform_type_and_running_state(database: Database, alice: Account) -> None:
    web = await new_bot(database, alice, "web one")
    await new_bot(database, alice, "web two")
    await new_bot(database, alice, "slack one", platform_type="slack")
    async with database.session() as session:
        await set_running(session, Principal(alice), web.id, True)

    assert await names(database, alice, BotFilters(platform_type="slack")) == {"slack one"}
    assert await names(database, alice, BotFilters(platform_type="discord")) == set()
    assert await names(database, alice, BotFilters(is_active=True)) == {"web one"}
    assert await names(database, alice, BotFilters(is_active=False)) == {"web two", "slack one"}
    assert await names(database, alice, BotFilters(platform_type="web", is_active=False)) == {"web two"}


async def test_listing_pages_through_every_bot_once_with_the_total(
    database: Database, alice: Account
) -> None:
    for number in range(5):
        await new_bot(database, alice, f"bot {number}")

    seen: list[str] = []
    async with database.session() as session:
        for offset in (0, 2, 4):
            page = await list_bots(session, Principal(alice), EVERYTHING, limit=2, offset=offset)
            assert (page.total, page.limit, page.offset) == (5, 2, offset)
            seen += [bot.name for bot in page.items]
        past_the_end = await list_bots(session, Principal(alice), EVERYTHING, limit=2, offset=10)
    assert sorted(seen) == [f"bot {number}" for number in range(5)]
    assert (past_the_end.items, past_the_end.total) == ([], 5)


# --- update ---------------------------------------------------------------------------


async def test_update_changes_only_the_settings_given(database: Database, alice: Account) -> None:
    bot = await new_bot(
        database, alice, "Helper", description="old", temperature=0.3, avatar_url="https://x.example/a.png"
    )
    async with database.session() as session:
        await update_bot(session, Principal(alice), bot.id, {"description": "new", "top_k": 3})

    stored = await stored_bot(database, bot.id)
    assert stored is not None
    assert (stored.description, stored.top_k) == ("new", 3)
    assert (stored.name, stored.temperature, stored.avatar_url) == ("Helper", 0.3, "https://x.example/a.png")
    assert stored.updated_at >= bot.updated_at


async def test_update_clears_a_nullable_setting_but_refuses_null_for_the_others(
    database: Database, alice: Account
) -> None:
    bot = await new_bot(
        database, alice, "Helper", llm_model="gpt-4o-mini", avatar_url="https://x.example/a.png"
    )
    async with database.session() as session:
        for setting in ("name", "temperature", "description", "plugins"):
            with pytest.raises(Invalid) as refused:
                await update_bot(session, Principal(alice), bot.id, {setting: None})
            assert refused.value.details["field"] == setting
    async with database.session() as session:
        await update_bot(session, Principal(alice), bot.id, {"avatar_url": None, "llm_model": None})

    stored = await stored_bot(database, bot.id)
    assert stored is not None
    assert (stored.name, stored.temperature, stored.description) == ("Helper", 0.7, "")
    assert (stored.avatar_url, stored.llm_model) == (None, None)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("llm_provider", "skynet"),
        ("plugins", ["calculator", "time-machine"]),
        ("platform_type", "carrier-pigeon"),
        ("temperature", 2.5),
        ("top_k", 0),
        ("name", "   "),
        ("no_such_setting", 1),
    ],
)
async def test_unknown_or_out_of_range_settings_are_invalid_and_change_nothing(
    database: Database, alice: Account, setting: str, value: Any
) -> None:
    bot = await new_bot(database, alice, "Helper")
    async with database.session() as session:
        with pytest.raises(Invalid):
            await update_bot(session, Principal(alice), bot.id, {"description": "changed", setting: value})

    stored = await stored_bot(database, bot.id)
    assert stored is not None
    assert (stored.name, stored.description, stored.llm_provider, stored.plugins) == (
        "Helper",
        "",
        "local",
        [],
    )


@pytest.mark.parametrize(
    "settings",
    [{"llm_provider": "skynet"}, {"plugins": ["time-machine"]}, {"platform_type": "carrier-pigeon"}],
)
async def test_a_bot_with_unknown_choices_is_not_created(
    database: Database, alice: Account, settings: dict[str, Any]
) -> None:
    with pytest.raises(Invalid):
        await new_bot(database, alice, "Helper", **settings)
    assert await rows(database, Bot) == 0


# --- knowledge bases linked to bots -----------------------------------------------------


async def test_a_bot_links_its_own_knowledge_bases(database: Database, alice: Account) -> None:
    manual = await new_base(database, alice, "manual")
    faq = await new_base(database, alice, "faq")
    bot = await new_bot(database, alice, "Helper", knowledge_base_ids=[faq.id, manual.id])
    async with database.session() as session:
        await update_bot(session, Principal(alice), bot.id, {"knowledge_base_ids": [manual.id]})
        fetched = await get_bot(session, Principal(alice), bot.id)
    assert [base.id for base in bot.knowledge_bases] == [faq.id, manual.id]
    assert [base.id for base in fetched.knowledge_bases] == [manual.id]


async def test_another_accounts_knowledge_base_cannot_be_linked(
    database: Database, alice: Account, bob: Account
) -> None:
    mine = await new_base(database, alice, "mine")
    bobs = await new_base(database, bob, "bobs")
    with pytest.raises(NotFound):
        await new_bot(database, alice, "Thief", knowledge_base_ids=[mine.id, bobs.id])
    assert await rows(database, Bot) == 0

    bot = await new_bot(database, alice, "Helper", knowledge_base_ids=[mine.id])
    async with database.session() as session:
        with pytest.raises(NotFound) as refused:
            await update_bot(
                session, Principal(alice), bot.id, {"description": "x", "knowledge_base_ids": [bobs.id]}
            )
    assert refused.value.details["missing"] == [bobs.id]
    async with database.session() as session:
        links = (await session.execute(select(bot_knowledge_bases))).all()
    assert [(link.bot_id, link.knowledge_base_id) for link in links] == [(bot.id, mine.id)]
    stored = await stored_bot(database, bot.id)
    assert stored is not None and stored.description == ""


# --- running and activity -------------------------------------------------------------


async def test_starting_and_stopping_a_bot(database: Database, alice: Account) -> None:
    bot = await new_bot(database, alice, "Helper")
    async with database.session() as session:
        started = await set_running(session, Principal(alice), bot.id, True)
    running = await stored_bot(database, bot.id)
    assert started.is_active is True
    assert running is not None and running.is_active is True and running.started_at is not None

    async with database.session() as session:
        await set_running(session, Principal(alice), bot.id, False)
    stopped = await stored_bot(database, bot.id)
    assert stopped is not None and stopped.is_active is False and stopped.started_at is None


async def test_activity_counts_the_bots_messages_and_their_latest_time(
    database: Database, alice: Account
) -> None:
    bot = await new_bot(database, alice, "Helper")
    other = await new_bot(database, alice, "Other")
    owner = Principal(alice)
    async with database.session() as session:
        idle = await bot_activity(session, owner, bot.id)
        first = await create_conversation(session, owner, ConversationDraft(bot_id=bot.id))
        second = await create_conversation(session, owner, ConversationDraft(bot_id=bot.id))
        elsewhere = await create_conversation(session, owner, ConversationDraft(bot_id=other.id))
        await add_message(session, owner, first.id, "user", "hi")
        await add_message(session, owner, first.id, "assistant", "hello")
        last = await add_message(session, owner, second.id, "user", "anyone?")
        await add_message(session, owner, elsewhere.id, "user", "not counted")

    async with database.session() as session:
        busy = await bot_activity(session, owner, bot.id)
    assert (idle.message_count, idle.last_activity) == (0, None)
    assert busy.message_count == 3
    assert busy.last_activity == last.created_at


# --- delete ---------------------------------------------------------------------------


async def test_deleting_a_bot_removes_everything_that_belongs_to_it(
    database: Database, alice: Account
) -> None:
    owner = Principal(alice)
    base = await new_base(database, alice, "manual")
    bot = await new_bot(database, alice, "Doomed", knowledge_base_ids=[base.id])
    keeper = await new_bot(database, alice, "Keeper", knowledge_base_ids=[base.id])
    async with database.session() as session:
        for target in (bot, keeper):
            conversation = await create_conversation(session, owner, ConversationDraft(bot_id=target.id))
            await add_message(session, owner, conversation.id, "user", "hello")
            await set_model(session, owner, target.id, ModelChoice("local", "mini", "summarise"))
        bound_key = await create_api_key(session, owner, "widget", bot_id=bot.id)
        account_key = await create_api_key(session, owner, "account-wide")

    async with database.session() as session:
        await delete_bot(session, owner, bot.id)

    assert await stored_bot(database, bot.id) is None
    assert await rows(database, Conversation, Conversation.bot_id == bot.id) == 0
    assert await rows(database, Message) == 1
    assert await rows(database, ModelSpec, ModelSpec.bot_id == bot.id) == 0
    assert await rows(database, ApiKey, ApiKey.id == bound_key.key.id) == 0
    assert await rows(database, bot_knowledge_bases, bot_knowledge_bases.c.bot_id == bot.id) == 0
    # What belonged to the account or to other bots stays.
    assert await rows(database, ApiKey, ApiKey.id == account_key.key.id) == 1
    assert await rows(database, KnowledgeBase, KnowledgeBase.id == base.id) == 1
    assert await rows(database, Conversation, Conversation.bot_id == keeper.id) == 1
    assert await rows(database, ModelSpec, ModelSpec.bot_id == keeper.id) == 1
    assert await rows(database, bot_knowledge_bases, bot_knowledge_bases.c.bot_id == keeper.id) == 1


# --- restricted credentials -------------------------------------------------------------


async def test_a_bot_bound_credential_sees_only_its_bot_and_cannot_create_bots(
    database: Database, alice: Account
) -> None:
    mine = await new_bot(database, alice, "Mine")
    sibling = await new_bot(database, alice, "Sibling")
    bound = Principal(alice, bot_id=mine.id)
    async with database.session() as session:
        page = await list_bots(session, bound, EVERYTHING, limit=10, offset=0)
        assert (await get_bot(session, bound, mine.id)).id == mine.id
        with pytest.raises(NotFound):
            await get_bot(session, bound, sibling.id)
        with pytest.raises(NotFound):
            await delete_bot(session, bound, sibling.id)
        with pytest.raises(Forbidden):
            await create_bot(session, bound, BotSettings(name="Another"))
    assert ([bot.id for bot in page.items], page.total) == ([mine.id], 1)
    assert await rows(database, Bot) == 2


async def test_a_read_only_credential_cannot_change_bots(database: Database, alice: Account) -> None:
    bot = await new_bot(database, alice, "Helper")
    reader = Principal(alice, scopes=frozenset({"bots:read"}))
    async with database.session() as session:
        assert (await get_bot(session, reader, bot.id)).name == "Helper"
        with pytest.raises(Forbidden):
            await create_bot(session, reader, BotSettings(name="New"))
        with pytest.raises(Forbidden):
            await update_bot(session, reader, bot.id, {"description": "changed"})
        with pytest.raises(Forbidden):
            await set_running(session, reader, bot.id, True)
        with pytest.raises(Forbidden):
            await set_model(session, reader, bot.id, ModelChoice("local", "mini", "chat"))
        with pytest.raises(Forbidden):
            await delete_bot(session, reader, bot.id)
    stored = await stored_bot(database, bot.id)
    assert stored is not None
    assert (stored.description, stored.is_active, stored.models) == ("", False, [])
    assert await rows(database, Bot) == 1


async def test_a_credential_without_bots_read_cannot_see_bots(database: Database, alice: Account) -> None:
    bot = await new_bot(database, alice, "Helper")
    outsider = Principal(alice, scopes=frozenset({"conversations:read"}))
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await get_bot(session, outsider, bot.id)
        with pytest.raises(Forbidden):
            await list_bots(session, outsider, EVERYTHING, limit=10, offset=0)


# --- toolbox --------------------------------------------------------------------------


async def test_setting_a_model_for_a_task_replaces_the_earlier_one(
    database: Database, alice: Account
) -> None:
    bot = await new_bot(database, alice, "Helper")
    owner = Principal(alice)
    async with database.session() as session:
        await set_model(session, owner, bot.id, ModelChoice("local", "mini-embed", "embedding"))
        await set_model(session, owner, bot.id, ModelChoice("openai", "text-embedding-3-small", "embedding"))
        await set_model(session, owner, bot.id, ModelChoice("local", "mini-rerank", "rerank"))

    async with database.session() as session:
        models = await list_models(session, owner, bot.id)
    assert sorted((m.task_type, m.kind, m.provider, m.model_id) for m in models) == [
        ("embedding", "embedding", "openai", "text-embedding-3-small"),
        ("rerank", "rerank", "local", "mini-rerank"),
    ]
    assert await rows(database, ModelSpec) == 2


async def test_removing_a_model_route(database: Database, alice: Account) -> None:
    bot = await new_bot(database, alice, "Helper")
    owner = Principal(alice)
    async with database.session() as session:
        await set_model(session, owner, bot.id, ModelChoice("local", "mini", "summarise"))
        await set_model(session, owner, bot.id, ModelChoice("local", "mini-rerank", "rerank"))
    async with database.session() as session:
        await remove_model(session, owner, bot.id, "summarise")
        with pytest.raises(NotFound):
            await remove_model(session, owner, bot.id, "vision")
    async with database.session() as session:
        remaining = await list_models(session, owner, bot.id)
    assert [model.task_type for model in remaining] == ["rerank"]


async def test_a_removed_model_is_gone_within_the_same_request(database: Database, alice: Account) -> None:
    bot = await new_bot(database, alice, "Helper")
    owner = Principal(alice)
    async with database.session() as session:
        # A request that holds the bot while it changes the toolbox, as a handler would.
        held = await get_bot(session, owner, bot.id)
        await set_model(session, owner, bot.id, ModelChoice("local", "mini", "summarise"))
        assert route(held, "summarise") == ModelChoice("local", "mini", "summarise")
        await remove_model(session, owner, bot.id, "summarise")
        assert await list_models(session, owner, bot.id) == []
        assert route(held, "summarise") is None


@pytest.mark.parametrize(
    "choice",
    [
        ModelChoice("local", "mini", "telepathy"),
        ModelChoice("skynet", "mini", "chat"),
        ModelChoice("local", "  ", "chat"),
    ],
)
async def test_an_invalid_model_choice_is_refused(
    database: Database, alice: Account, choice: ModelChoice
) -> None:
    bot = await new_bot(database, alice, "Helper")
    async with database.session() as session:
        with pytest.raises(Invalid):
            await set_model(session, Principal(alice), bot.id, choice)
    assert await rows(database, ModelSpec) == 0


async def test_another_accounts_toolbox_is_not_found(
    database: Database, alice: Account, bob: Account
) -> None:
    bobs = await new_bot(database, bob, "Bobs")
    async with database.session() as session:
        await set_model(session, Principal(bob), bobs.id, ModelChoice("local", "mini", "chat"))
    async with database.session() as session:
        with pytest.raises(NotFound):
            await set_model(session, Principal(alice), bobs.id, ModelChoice("local", "mine", "chat"))
        with pytest.raises(NotFound):
            await list_models(session, Principal(alice), bobs.id)
        with pytest.raises(NotFound):
            await remove_model(session, Principal(alice), bobs.id, "chat")
    async with database.session() as session:
        assert [m.model_id for m in await list_models(session, Principal(bob), bobs.id)] == ["mini"]


# --- routing --------------------------------------------------------------------------


async def test_routing_prefers_the_toolbox_then_the_chat_settings(database: Database, alice: Account) -> None:
    owner = Principal(alice)
    configured = await new_bot(database, alice, "Configured", llm_provider="openai", llm_model="gpt-4o-mini")
    bare = await new_bot(database, alice, "Bare")
    async with database.session() as session:
        await set_model(session, owner, configured.id, ModelChoice("local", "mini-rerank", "rerank"))
    async with database.session() as session:
        configured = await get_bot(session, owner, configured.id)
        bare = await get_bot(session, owner, bare.id)

    assert route(configured, "rerank") == ModelChoice("local", "mini-rerank", "rerank")
    assert route(configured, "chat") == ModelChoice("openai", "gpt-4o-mini", "chat")
    assert route(configured, "embedding") is None
    assert route(bare, "chat") is None

    async with database.session() as session:
        await set_model(session, owner, configured.id, ModelChoice("anthropic", "claude-haiku", "chat"))
        configured = await get_bot(session, owner, configured.id)
    assert route(configured, "chat") == ModelChoice("anthropic", "claude-haiku", "chat")


# --- knowledge bases ------------------------------------------------------------------


async def test_a_knowledge_base_is_created_with_its_settings(database: Database, alice: Account) -> None:
    async with database.session() as session:
        base = await create_knowledge_base(
            session,
            Principal(alice),
            KnowledgeBaseDraft(
                name="manual",
                chunk_size=500,
                chunk_overlap=50,
                metadata={"lang": "pt"},
                embedding_model="multilingual-e5-small",
            ),
            MODELS,
            VECTORS,
        )
    async with database.session() as session:
        fetched = await get_knowledge_base(session, Principal(alice), base.id)
    assert (fetched.name, fetched.chunk_size, fetched.chunk_overlap) == ("manual", 500, 50)
    assert (fetched.meta, fetched.embedding_model, fetched.vector_store_type) == (
        {"lang": "pt"},
        "multilingual-e5-small",
        "builtin",
    )


@pytest.mark.parametrize(
    "draft",
    [
        KnowledgeBaseDraft(name="kb", chunk_size=100, chunk_overlap=100),
        KnowledgeBaseDraft(name="kb", chunk_size=100, chunk_overlap=150),
        KnowledgeBaseDraft(name="kb", vector_store_type="floppy"),
    ],
)
async def test_a_knowledge_base_with_impossible_settings_is_refused(
    database: Database, alice: Account, draft: KnowledgeBaseDraft
) -> None:
    async with database.session() as session:
        with pytest.raises(Invalid):
            await create_knowledge_base(session, Principal(alice), draft, MODELS, VECTORS)
    assert await rows(database, KnowledgeBase) == 0


async def test_knowledge_bases_are_listed_per_account_with_paging(
    database: Database, alice: Account, bob: Account
) -> None:
    for name in ("one", "two", "three"):
        await new_base(database, alice, name)
    await new_base(database, bob, "bobs")

    async with database.session() as session:
        first = await list_knowledge_bases(session, Principal(alice), limit=2, offset=0)
        rest = await list_knowledge_bases(session, Principal(alice), limit=2, offset=2)
    assert (first.total, rest.total) == (3, 3)
    assert sorted(base.name for base in first.items + rest.items) == ["one", "three", "two"]


async def test_another_accounts_knowledge_base_is_not_found(
    database: Database, alice: Account, bob: Account
) -> None:
    bobs = await new_base(database, bob, "bobs")
    async with database.session() as session:
        with pytest.raises(NotFound):
            await get_knowledge_base(session, Principal(alice), bobs.id)
        with pytest.raises(NotFound):
            await delete_knowledge_base(session, Principal(alice), bobs.id, VECTORS)
    assert await rows(database, KnowledgeBase, KnowledgeBase.id == bobs.id) == 1


async def test_deleting_a_knowledge_base_unlinks_it_from_bots(database: Database, alice: Account) -> None:
    base = await new_base(database, alice, "manual")
    bot = await new_bot(database, alice, "Helper", knowledge_base_ids=[base.id])
    async with database.session() as session:
        await delete_knowledge_base(session, Principal(alice), base.id, VECTORS)
    async with database.session() as session:
        with pytest.raises(NotFound):
            await get_knowledge_base(session, Principal(alice), base.id)
        assert (await get_bot(session, Principal(alice), bot.id)).knowledge_bases == []
    assert await rows(database, bot_knowledge_bases) == 0


async def test_a_bot_bound_credential_sees_only_its_bots_knowledge_bases(
    database: Database, alice: Account
) -> None:
    linked = await new_base(database, alice, "linked")
    unlinked = await new_base(database, alice, "unlinked")
    bot = await new_bot(database, alice, "Helper", knowledge_base_ids=[linked.id])
    bound = Principal(alice, bot_id=bot.id)
    async with database.session() as session:
        page = await list_knowledge_bases(session, bound, limit=10, offset=0)
        with pytest.raises(NotFound):
            await get_knowledge_base(session, bound, unlinked.id)
        with pytest.raises(Forbidden):
            await create_knowledge_base(session, bound, KnowledgeBaseDraft(name="new"), MODELS, VECTORS)
    assert [base.id for base in page.items] == [linked.id]
