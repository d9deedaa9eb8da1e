"""A bot's own documents live in its implicit knowledge base: one mechanism, not two."""

from tertulia.core.accounts import NewAccount, Principal, register
from tertulia.core.bots import BotSettings, create_bot, get_bot
from tertulia.core.knowledge.documents import Upload, add_document, bot_knowledge_base
from tertulia.core.knowledge.fetching import FetchLimits
from tertulia.core.knowledge.ingest import IngestLimits, Ingestor
from tertulia.core.knowledge.retrieval import Retriever
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.jobs import InlineJobs
from tertulia.providers.registry import ModelRegistry
from tertulia.settings import Settings
from tertulia.store.session import Database


async def test_documents_given_to_a_bot_answer_its_questions(database: Database) -> None:
    models = ModelRegistry(Settings(database_url=database.url))
    limits = IngestLimits(max_bytes=1 << 20, max_unpacked_bytes=1 << 24, fetch=FetchLimits())
    vectors = VectorIndex(None)
    jobs = InlineJobs(database, {"ingest": Ingestor(database, models, vectors, limits)})
    async with database.session() as session:
        owner = Principal(await register(session, NewAccount("owner@example.com", "a long secret", "owner")))
        bot = await create_bot(session, owner, BotSettings(name="Trainee"))
        own = await bot_knowledge_base(session, owner, bot.id)
        assert (await bot_knowledge_base(session, owner, bot.id)).id == own.id  # made once
        await add_document(
            session,
            owner,
            own.id,
            Upload("text", "notes", b"The greenhouse door code is 4471."),
            jobs,
            max_bytes=1 << 20,
            max_unpacked_bytes=1 << 24,
        )
    await jobs.idle()
    async with database.session() as session:
        bot = await get_bot(session, owner, bot.id)
        assert [base.id for base in bot.knowledge_bases] == [own.id]
    [source] = await Retriever(database, models, vectors).for_bot(bot, "What is the greenhouse door code?")
    assert "4471" in source.content and source.knowledge_base_id == own.id
    await models.close()
