"""The chat engine: turns (bot, conversation, user message) into one stream of events.

Every face renders this same stream in its own format; a face that does not stream simply
collects it (`collect_reply`). Steps: load the bot and the conversation, build the prompt
(system prompt, history trimmed to the bot's input budget with the model's own tokenizer,
the question), stream the model's reply, then persist both messages with their token
counts. Nothing is written when the model fails before answering; a reply cut short by a
reader that left is saved, marked partial.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.bots import get_bot
from tertulia.core.catalog import route
from tertulia.core.conversations import get_conversation
from tertulia.core.errors import Invalid, TertuliaError, UpstreamFailed
from tertulia.core.principal import Principal
from tertulia.providers.base import ChatModel, ChatTurn, Sampling, Usage
from tertulia.providers.registry import ModelRegistry
from tertulia.store.session import Database
from tertulia.store.tables import Bot, Message, utcnow

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."
LANGUAGE_RULE = "Always answer in the same language as the user's question."
HISTORY_LIMIT = 200  # messages read back before trimming by tokens
MAX_QUESTION_CHARS = 32_000


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    user_message: Message
    reply: Message
    usage: Usage
    related_prompts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    error: TertuliaError


ChatEvent = Token | Done | Failed


@dataclass(frozen=True)
class Question:
    content: str
    message_type: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)


async def _history(session: AsyncSession, conversation_id: str) -> list[Message]:
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.role.in_(("user", "assistant")))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return list(reversed(list(rows)))


def system_prompt(bot: Bot) -> str:
    return f"{bot.system_prompt.strip() or DEFAULT_SYSTEM_PROMPT}\n{LANGUAGE_RULE}"


async def build_prompt(
    model: ChatModel, bot: Bot, history: Sequence[Message], question: str
) -> tuple[list[ChatTurn], int]:
    """System prompt, as much recent history as fits `bot.max_input_tokens`, the question.

    Returns the turns and the prompt's token count (chat template included).
    """
    system = ChatTurn("system", system_prompt(bot))
    asked = ChatTurn("user", question)
    budget = bot.max_input_tokens - await model.count_prompt_tokens([system, asked])
    if budget < 0:
        raise Invalid(
            "the message is longer than this bot accepts",
            {"field": "content", "max_input_tokens": bot.max_input_tokens},
        )
    kept: list[ChatTurn] = []
    for message in reversed(history):
        turn = ChatTurn("user" if message.role == "user" else "assistant", message.content)
        cost = await model.count_tokens(message.content) + 5  # a turn's template markers
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    turns = [system, *reversed(kept), asked]
    return turns, await model.count_prompt_tokens(turns)


class ChatEngine:
    def __init__(self, database: Database, models: ModelRegistry) -> None:
        self._database = database
        self._models = models

    async def reply(
        self, actor: Principal, conversation_id: str, question: Question
    ) -> AsyncIterator[ChatEvent]:
        """The events of one reply. Errors arrive as a `Failed` event, never as an exception."""
        if not question.content.strip():
            yield Failed(Invalid("the message is empty", {"field": "content"}))
            return
        if len(question.content) > MAX_QUESTION_CHARS:
            yield Failed(Invalid("the message is too long", {"field": "content", "max": MAX_QUESTION_CHARS}))
            return
        try:
            async with self._database.session() as session:
                actor.require("conversations:write")
                conversation = await get_conversation(session, actor, conversation_id)
                bot = await get_bot(session, actor, conversation.bot_id)
                history = await _history(session, conversation.id)
            model = self._models.chat_model(route(bot, "chat"))
            turns, prompt_tokens = await build_prompt(model, bot, history, question.content)
        except TertuliaError as error:
            yield Failed(error)
            return

        sampling = Sampling(temperature=bot.temperature, top_p=bot.top_p, max_tokens=bot.max_reply_tokens)
        pieces: list[str] = []
        try:
            async with aclosing(model.stream(turns, sampling)) as stream:
                async for piece in stream:
                    pieces.append(piece)
                    yield Token(piece)
        except TertuliaError as error:
            # A failed reply leaves nothing in the conversation, not even the question.
            await self._count_error(bot.id)
            yield Failed(
                error if not pieces else UpstreamFailed(f"the model stopped mid-reply: {error.message}")
            )
            return
        except (GeneratorExit, asyncio.CancelledError):
            # The reader left: generation stopped with the stream; what was said is kept.
            if pieces:
                with anyio.CancelScope(shield=True):
                    await self._save(
                        actor, conversation.id, question, model, pieces, prompt_tokens, partial=True
                    )
            raise
        user_message, reply, usage = await self._save(
            actor, conversation.id, question, model, pieces, prompt_tokens, partial=False
        )
        yield Done(user_message, reply, usage)

    async def _save(
        self,
        actor: Principal,
        conversation_id: str,
        question: Question,
        model: ChatModel,
        pieces: list[str],
        prompt_tokens: int,
        partial: bool,
    ) -> tuple[Message, Message, Usage]:
        answer = "".join(pieces)
        usage = Usage(prompt_tokens, await model.count_tokens(answer))
        async with self._database.session() as session:
            conversation = await get_conversation(session, actor, conversation_id)
            asked = Message(
                account_id=actor.account_id,
                conversation_id=conversation.id,
                role="user",
                content=question.content,
                message_type=question.message_type,
                token_count=await model.count_tokens(question.content),
                meta=question.metadata,
            )
            reply_meta: dict[str, Any] = {
                "model": model.model_id,
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            }
            if partial:
                reply_meta["partial"] = True
            reply = Message(
                account_id=actor.account_id,
                conversation_id=conversation.id,
                role="assistant",
                content=answer,
                token_count=usage.completion_tokens,
                meta=reply_meta,
            )
            # The reply is stamped after the question so history keeps its order.
            session.add(asked)
            await session.flush()
            reply.created_at = max(utcnow(), asked.created_at)
            session.add(reply)
            conversation.updated_at = utcnow()
            await session.commit()
        return asked, reply, usage

    async def _count_error(self, bot_id: str) -> None:
        async with self._database.session() as session:
            bot = await session.get(Bot, bot_id)
            if bot is not None:
                bot.error_count += 1
                await session.commit()


async def collect_reply(events: AsyncIterator[ChatEvent]) -> Done:
    """For faces that answer in one piece: the finished reply, or the failure raised."""
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Done):
                return event
    raise UpstreamFailed("the model ended without a reply")
