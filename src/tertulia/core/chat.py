"""The chat engine: turns a question into one stream of events.

Every face renders this same stream in its own format; a face that does not stream simply
collects it (`collect_reply`). Two ways in:

- `reply`: a question in a stored conversation. Load the bot and the conversation, build
  the prompt (system prompt, history trimmed to the bot's input budget with the model's own
  tokenizer, the question), stream the model's reply, then persist both messages, their
  token counts and the usage record in one transaction; related prompts follow when the bot
  asks for them. Nothing is written when the model fails before answering; a reply cut
  short by a reader that left is saved, marked partial.
- `complete`: a stateless exchange (the OpenAI face) whose turns the client sends; with a
  bot its system prompt and settings apply. Only usage is recorded.

Either may be asked for continuations (ChatBotKit's `limits.continuations`): a reply that
stops at its token limit is carried on by another model call, shown the end of the reply so
far, so that a reply may outgrow the model's context; its tokens stream on in the same stream.

Retrieval joins the stream in the knowledge issue, before the model call (a `Sources`
event); it is not faked here.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.bots import get_bot
from tertulia.core.catalog import ModelChoice, chat_task
from tertulia.core.conversation_events import ORIGIN
from tertulia.core.conversations import get_conversation
from tertulia.core.errors import Conflict, Invalid, TertuliaError, UpstreamFailed
from tertulia.core.handoff import held_by
from tertulia.core.knowledge.retrieval import Retriever, Source
from tertulia.core.models import Resolved, resolve, resolve_for_account
from tertulia.core.monitoring.log_capture import log_failure
from tertulia.core.plugins import enabled_tools
from tertulia.core.principal import Principal
from tertulia.core.tools import Tool, ToolContext, calling
from tertulia.core.tools.calling import ToolCall, ToolOutcome
from tertulia.core.usage import record_usage, require_quota
from tertulia.providers.base import ChatModel, ChatTurn, Sampling, Usage
from tertulia.providers.registry import ModelRegistry
from tertulia.store.session import Database
from tertulia.store.tables import Bot, Message, utcnow

log = logging.getLogger("tertulia.chat")

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."
LANGUAGE_RULE = "Always answer in the same language as the user's question."
HISTORY_LIMIT = 200  # messages read back before trimming by tokens
MAX_QUESTION_CHARS = 32_000
REPLY_ROOM = 64  # tokens the prompt always leaves for the reply
TURN_OVERHEAD = 5  # a turn's chat-template markers, roughly
CONTEXT_SHARE = 0.6  # of the input budget, at most, for retrieved context
# Worded for small models: "cite what you use as [1], [2]" made Qwen 0.5B answer with
# numbers out of the instruction ("2", "18") instead of the facts in the context.
GROUNDING_RULE = (
    "Answer the question using only the context below. If the context does not contain the "
    "answer, say that you do not know. You may cite the context by its number, like [1]."
)
NO_CONTEXT_RULE = (
    "No document matched this question. Say that you could not find it in your documents; do not guess."
)
# A continuation is shown at most this much of the reply so far (the end of it): enough to
# go on from, and it keeps the prompt of every continuation small.
CONTINUATION_TAIL_TOKENS = 256
# Worded for small models: told "do not repeat" or "exactly where you stopped", Qwen 0.5B
# started its answer over each time; this it carries on.
CONTINUE_INSTRUCTION = "Continue from where you stopped."
RELATED_PROMPTS = 3
RELATED_PROMPT_CHARS = 200
RELATED_INSTRUCTION = (
    "Suggest {count} short follow-up questions the user could ask next about this exchange. "
    "Write them in the language of the question, one per line, without numbering or any other text."
)


@dataclass(frozen=True)
class Sources:
    """What the bot's knowledge offered for this question (empty: nothing passed)."""

    sources: list[Source]


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    """The reply is complete. `user_message`/`reply` are None for stateless completions."""

    text: str
    usage: Usage
    model: str
    user_message: Message | None = None
    reply: Message | None = None
    related_prompts: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    sources: list[Source] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    error: TertuliaError


@dataclass(frozen=True)
class ToolCalled:
    """The model called one of the bot's tools (before its answer)."""

    call: ToolCall


@dataclass(frozen=True)
class ToolReturned:
    """What the tool gave back (or why it failed); the answer that follows uses it."""

    outcome: ToolOutcome


@dataclass(frozen=True)
class Held:
    """A person holds the conversation (core.handoff): the question is stored for them and
    the bot does not answer. `user_message` is None when it was stored already."""

    operator: str
    user_message: Message | None


class PersonHolds(Conflict):
    """How a face that cannot say `Held` otherwise tells its client (409)."""

    def __init__(self, held: Held) -> None:
        super().__init__(
            f"{held.operator} is answering this conversation in person; the message was kept for them",
            {"operator": held.operator},
        )


ChatEvent = Sources | ToolCalled | ToolReturned | Token | Done | Failed | Held


@dataclass(frozen=True)
class Question:
    content: str
    message_type: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)
    # The live connection that asks (a WebSocket), which its own reply stream already tells.
    origin: str | None = None


@dataclass(frozen=True)
class Completion:
    """A stateless exchange: the client's turns, answered by a bot or by a raw model."""

    turns: Sequence[ChatTurn]
    bot_id: str | None = None
    model: ModelChoice | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    also_from: tuple[str, ...] = ()  # other bots whose knowledge is searched too
    continuations: int = 0  # further model calls that may carry on a reply cut at its limit


async def _history(session: AsyncSession, conversation_id: str) -> list[ChatTurn]:
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.role.in_(("user", "assistant")))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return [ChatTurn("user" if m.role == "user" else "assistant", m.content) for m in reversed(list(rows))]


def system_prompt(bot: Bot | None, extra: str = "") -> str:
    own = bot.system_prompt.strip() if bot is not None else ""
    parts = [own or (DEFAULT_SYSTEM_PROMPT if not extra else ""), extra.strip(), LANGUAGE_RULE]
    return "\n".join(part for part in parts if part)


async def grounded_prompt(
    model: ChatModel, bot: Bot, sources: list[Source], extra: str = ""
) -> tuple[str, list[Source]]:
    """The system prompt of a bot with knowledge, and the sources that fit in it.

    With sources, the model is told to answer from them only and to cite them by number;
    without (and with `no_context_llm_guess` off) it is told to say it does not know.
    The context takes at most CONTEXT_SHARE of the bot's input budget, best sources first.
    """
    prompt = system_prompt(bot, extra)
    if not sources:
        return (prompt if bot.no_context_llm_guess else f"{prompt}\n{NO_CONTEXT_RULE}"), []
    budget = int(min(bot.max_input_tokens, model.context_tokens) * CONTEXT_SHARE)
    used: list[Source] = []
    blocks: list[str] = []
    for source in sources:
        block = f"[{len(used) + 1}] ({source.document_name}) {source.content}"
        cost = await model.count_tokens(block)
        if cost > budget:
            break
        budget -= cost
        used.append(source)
        blocks.append(block)
    if not used:
        return (prompt if bot.no_context_llm_guess else f"{prompt}\n{NO_CONTEXT_RULE}"), []
    return f"{prompt}\n{GROUNDING_RULE}\n\nContext:\n" + "\n\n".join(blocks), used


def sources_metadata(sources: list[Source]) -> list[dict[str, Any]]:
    """How sources are stored with a reply, so history shows the same citations."""
    return [
        {
            "knowledge_base_id": source.knowledge_base_id,
            "document_id": source.document_id,
            "document_name": source.document_name,
            "chunk": source.chunk_ref,
            "content": source.content,
            "score": source.score,
            "metadata": source.metadata,
        }
        for source in sources
    ]


async def fit_prompt(
    model: ChatModel,
    system: str,
    earlier: Sequence[ChatTurn],
    last: Sequence[ChatTurn],
    max_input_tokens: int,
) -> tuple[list[ChatTurn], int]:
    """The system turn, as many recent earlier turns as fit, and the last turns (all kept).

    Counted with the model's own tokenizer. Returns the turns and the prompt's token count
    (chat template included); refuses last turns that cannot fit at all.
    """
    system_turn = ChatTurn("system", system)
    limit = input_limit(model, max_input_tokens)
    budget = limit - await model.count_prompt_tokens([system_turn, *last])
    if budget < 0:
        raise Invalid(
            "the message is longer than this bot accepts",
            {"field": "content", "max_input_tokens": limit},
        )
    kept: list[ChatTurn] = []
    for turn in reversed(earlier):
        cost = await model.count_tokens(turn.content) + TURN_OVERHEAD
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    turns = [system_turn, *reversed(kept), *last]
    return turns, await model.count_prompt_tokens(turns)


def input_limit(model: ChatModel, max_input_tokens: int) -> int:
    """The most tokens a prompt may take: the bot's input budget, leaving room for a reply."""
    return min(max_input_tokens, model.context_tokens - REPLY_ROOM)


async def last_tokens(model: ChatModel, text: str, budget: int) -> str:
    """The longest end of `text` that is at most `budget` tokens (the model's tokenizer)."""
    if await model.count_tokens(text) <= budget:
        return text
    fits, too_long = len(text), 0  # where the end may start: fits, and does not
    while fits - too_long > 1:
        middle = (fits + too_long) // 2
        if await model.count_tokens(text[middle:]) <= budget:
            fits = middle
        else:
            too_long = middle
    return text[fits:]


@dataclass(frozen=True)
class _Exchange:
    """What a reply answers, kept to build each model call's prompt afresh."""

    system: str
    earlier: Sequence[ChatTurn]
    question: ChatTurn
    max_input_tokens: int

    async def prompt(self, model: ChatModel) -> tuple[list[ChatTurn], int]:
        return await fit_prompt(model, self.system, self.earlier, [self.question], self.max_input_tokens)

    async def continuation(self, model: ChatModel, so_far: str) -> tuple[list[ChatTurn], int] | None:
        """The prompt that carries on `so_far`: the question, the end of the reply so far as
        the assistant's turn, and a request to go on; earlier turns as they fit. None when
        not even a little of the reply fits."""
        go_on = ChatTurn("user", CONTINUE_INSTRUCTION)
        frame = [ChatTurn("system", self.system), self.question, ChatTurn("assistant", ""), go_on]
        spare = input_limit(model, self.max_input_tokens) - await model.count_prompt_tokens(frame)
        # A turn's worth less: the template may join the tail's first token differently.
        room = min(spare - TURN_OVERHEAD, CONTINUATION_TAIL_TOKENS)
        if room <= 0:
            return None
        tail = ChatTurn("assistant", await last_tokens(model, so_far, room))
        return await fit_prompt(
            model, self.system, self.earlier, [self.question, tail, go_on], self.max_input_tokens
        )


def _check_question(content: str) -> None:
    if not content.strip():
        raise Invalid("the message is empty", {"field": "content"})
    if len(content) > MAX_QUESTION_CHARS:
        raise Invalid("the message is too long", {"field": "content", "max": MAX_QUESTION_CHARS})


def parse_related(text: str) -> list[str]:
    """One suggestion per line; numbering, bullets and quotes taken off."""
    prompts: list[str] = []
    for line in text.splitlines():
        cleaned = re.sub(r"^\s*(?:[-*•]|\d+[.)、:]|[(（]?\d+[)）])\s*", "", line).strip().strip("\"'“”")
        if cleaned and cleaned not in prompts:
            prompts.append(cleaned[:RELATED_PROMPT_CHARS])
    return prompts[:RELATED_PROMPTS]


@dataclass
class _Call:
    """One model call: its prompt's size, the pieces it said, and any usage it reported."""

    prompt_tokens: int
    pieces: list[str] = field(default_factory=list)
    reported: Usage | None = None

    async def usage(self, model: ChatModel) -> Usage:
        if self.reported is not None:
            return self.reported
        return Usage(self.prompt_tokens, await model.count_tokens("".join(self.pieces)))


class _Generation:
    """A reply's model calls (more than one when it is continued): relays pieces as tokens,
    keeps the whole text and the usage of every call."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.calls: list[_Call] = []
        self.finish_reason = "stop"

    async def run(
        self, turns: Sequence[ChatTurn], prompt_tokens: int, sampling: Sampling
    ) -> AsyncIterator[Token]:
        """One model call."""
        call = _Call(prompt_tokens)
        self.calls.append(call)
        async with aclosing(self.model.stream(turns, sampling)) as stream:
            async for piece in stream:
                if isinstance(piece, Usage):
                    call.reported = piece
                    continue
                call.pieces.append(piece)
                yield Token(piece)

    async def run_continued(
        self,
        exchange: _Exchange,
        turns: Sequence[ChatTurn],
        prompt_tokens: int,
        sampling: Sampling,
        continuations: int,
    ) -> AsyncIterator[Token]:
        """The reply: one model call, carried on by up to `continuations` more while a call
        stops at its token limit (`sampling.max_tokens`, less where the context is short)."""
        left = continuations
        while True:
            room = self.model.context_tokens - prompt_tokens
            limited = replace(sampling, max_tokens=max(1, min(sampling.max_tokens, room)))
            async with aclosing(self.run(turns, prompt_tokens, limited)) as tokens:
                async for token in tokens:
                    yield token
            used = await self.calls[-1].usage(self.model)
            self.finish_reason = "length" if used.completion_tokens >= limited.max_tokens else "stop"
            if self.finish_reason == "stop" or left <= 0:
                return
            following = await exchange.continuation(self.model, self.text)
            if following is None:
                return
            turns, prompt_tokens = following
            left -= 1

    @property
    def text(self) -> str:
        return "".join(piece for call in self.calls for piece in call.pieces)

    @property
    def spent(self) -> bool:
        """Whether there is usage to record: some text, or a provider's report."""
        return bool(self.text) or any(call.reported is not None for call in self.calls)

    def failure(self, error: TertuliaError) -> TertuliaError:
        """Before any text the model's own error stands; after some, the reply was cut short."""
        if not self.text:
            return error
        return UpstreamFailed(f"the model stopped mid-reply: {error.message}")

    async def usage(self) -> Usage:
        """Summed over the calls."""
        used = [await call.usage(self.model) for call in self.calls]
        return Usage(sum(u.prompt_tokens for u in used), sum(u.completion_tokens for u in used))


class ChatEngine:
    def __init__(
        self,
        database: Database,
        models: ModelRegistry,
        quota_for: Callable[[str], int | None],
        retriever: Retriever,
        tool_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self._database = database
        self._models = models
        self._quota_for = quota_for
        self._retriever = retriever
        self._tool_options = tool_options or {}

    def _model(self, resolved: Resolved) -> tuple[ChatModel, str]:
        choice = resolved.choice or self._models.default_chat
        return self._models.chat_model(resolved.choice, resolved.credentials), choice.provider

    async def reply(
        self,
        actor: Principal,
        conversation_id: str,
        question: Question | None,
        also_from: Sequence[str] = (),
        continuations: int = 0,
    ) -> AsyncIterator[ChatEvent]:
        """The events of one reply. Errors arrive as a `Failed` event, never as an exception.

        `question` None answers the user's message already stored last in the conversation
        (ChatBotKit's send, then receive); only the reply is stored then. `also_from` names
        other bots of the caller whose knowledge is searched as well. `continuations` is how
        many more model calls may carry on a reply that stops at the bot's reply limit.
        """
        try:
            if question is not None:
                _check_question(question.content)
            async with self._database.session() as session:
                actor.require("conversations:write")
                conversation = await get_conversation(session, actor, conversation_id)
                bot = await get_bot(session, actor, conversation.bot_id)
                extra = [await get_bot(session, actor, bot_id) for bot_id in also_from]
                operator = held_by(conversation)
                if operator is not None:
                    yield Held(operator, await _keep_for_person(session, actor, conversation.id, question))
                    return
                history = await _history(session, conversation.id)
                saved: Question | None = question  # what _save stores as the user's message
                if question is None:
                    if not history or history[-1].role != "user":
                        raise Invalid("the conversation has no message of the user's to answer")
                    question, history = Question(history[-1].content), history[:-1]
                await require_quota(session, actor.account_id, self._quota_for(actor.account.plan))
                await limits.require_room(session, actor, "tokens")
                await limits.require_room(session, actor, "messages", 2 if saved is not None else 1)
                resolved = await resolve(session, bot, chat_task(bot, question.content))
                tools = await enabled_tools(session, bot)
            model, provider = self._model(resolved)
            knows = await self._retriever.knows(bot, extra)
            found = await self._retriever.for_bot(bot, question.content, extra) if knows else []
            system, sources = await grounded_prompt(model, bot, found) if knows else (system_prompt(bot), [])
            exchange = _Exchange(system, history, ChatTurn("user", question.content), bot.max_input_tokens)
            turns, prompt_tokens = await exchange.prompt(model)
        except TertuliaError as error:
            yield _failed(error, actor, conversation_id)
            return
        if knows:
            yield Sources(sources)
        generation = _Generation(model)
        tool_calls: list[ToolOutcome] = []
        if tools:
            try:
                tool_calls = await self._use_tools(
                    actor, bot, conversation.id, generation, tools, question.content
                )
                for outcome in tool_calls:
                    yield ToolCalled(outcome.call)
                    yield ToolReturned(outcome)
                answered = calling.answered(tool_calls)
                if answered is not None:
                    exchange = replace(exchange, question=calling.answer_turn(question.content, answered))
                    turns, prompt_tokens = await exchange.prompt(model)
            except TertuliaError as error:
                await self._count_error(bot.id)
                await self._record_spent(actor, generation, provider, bot.id, conversation.id)
                yield _failed(generation.failure(error), actor, conversation.id)
                return
        given = calling.final_answer(tool_calls)
        if given is not None:
            # A tool that answers for the bot (a person was asked for): no model call.
            fixed: _Fixed | None = _Fixed(given, [], "handoff")
        else:
            fixed = _fixed_answer(bot, knows, sources) if calling.answered(tool_calls) is None else None
        if fixed is not None:
            # A stored answer given as written, or nothing found: no model call.
            canned = _Generation(model)
            # (Asking the model for a tool call, if it was asked, still counts.)
            canned.calls = [*generation.calls, _Call(0, [fixed.text], Usage(0, 0))]
            yield Token(fixed.text)
            user_message, reply, usage = await self._save(
                actor,
                bot,
                conversation.id,
                saved,
                canned,
                provider,
                partial=False,
                sources=fixed.sources,
                flag=fixed.flag,
                tool_calls=tool_calls,
            )
            yield Done(canned.text, usage, model.model_id, user_message, reply, sources=fixed.sources)
            return

        # (The bot's top_k is retrieval's, CriaBot's sense: not a sampling setting.)
        sampling = Sampling(temperature=bot.temperature, top_p=bot.top_p, max_tokens=bot.max_reply_tokens)
        try:
            async with aclosing(
                generation.run_continued(exchange, turns, prompt_tokens, sampling, continuations)
            ) as tokens:
                async for token in tokens:
                    yield token
        except TertuliaError as error:
            # A failed reply leaves nothing in the conversation, not even the question; what
            # the model did produce still counts against the account.
            await self._count_error(bot.id)
            await self._record_spent(actor, generation, provider, bot.id, conversation.id)
            yield _failed(generation.failure(error), actor, conversation.id)
            return
        except (GeneratorExit, asyncio.CancelledError):
            # The reader left: generation stopped with the stream; what was said is kept.
            if generation.text:
                with anyio.CancelScope(shield=True):
                    await self._save(
                        actor,
                        bot,
                        conversation.id,
                        saved,
                        generation,
                        provider,
                        partial=True,
                        sources=sources,
                        tool_calls=tool_calls,
                    )
            raise
        user_message, reply, usage = await self._save(
            actor,
            bot,
            conversation.id,
            saved,
            generation,
            provider,
            partial=False,
            sources=sources,
            tool_calls=tool_calls,
        )
        related: list[str] = []
        if bot.llm_generate_related_prompts:
            related = await self._related_prompts(actor, bot, question.content, generation.text, reply)
        yield Done(
            generation.text,
            usage,
            model.model_id,
            user_message,
            reply,
            related,
            finish_reason=generation.finish_reason,
            sources=sources,
        )

    async def complete(self, actor: Principal, request: Completion) -> AsyncIterator[ChatEvent]:
        """A stateless reply to the client's own turns; the last turn must be the user's."""
        try:
            if not request.turns or request.turns[-1].role != "user":
                raise Invalid("the last message must be the user's", {"field": "messages"})
            _check_question(request.turns[-1].content)
            instructions = "\n".join(turn.content for turn in request.turns if turn.role == "system")
            earlier = [turn for turn in request.turns[:-1] if turn.role != "system"]
            async with self._database.session() as session:
                bot = await get_bot(session, actor, request.bot_id) if request.bot_id else None
                extra = [await get_bot(session, actor, bot_id) for bot_id in request.also_from]
                await require_quota(session, actor.account_id, self._quota_for(actor.account.plan))
                await limits.require_room(session, actor, "tokens")
                tools = await enabled_tools(session, bot) if bot is not None else []
                if bot is not None:
                    resolved = await resolve(session, bot, chat_task(bot, request.turns[-1].content))
                elif request.model is not None:
                    actor.require("models:read")
                    resolved = await resolve_for_account(session, actor, request.model)
                else:
                    raise Invalid("name a bot or a model", {"field": "model"})
            model, provider = self._model(resolved)
            knows = bot is not None and await self._retriever.knows(bot, extra)
            sources: list[Source] = []
            system = system_prompt(bot, instructions)
            if knows:
                assert bot is not None
                found = await self._retriever.for_bot(bot, request.turns[-1].content, extra)
                system, sources = await grounded_prompt(model, bot, found, instructions)
            exchange = _Exchange(
                system,
                earlier,
                request.turns[-1],
                bot.max_input_tokens if bot is not None else model.context_tokens,
            )
            turns, prompt_tokens = await exchange.prompt(model)
        except TertuliaError as error:
            yield _failed(error, actor)
            return
        if knows:
            yield Sources(sources)
        bot_id = bot.id if bot is not None else None
        generation = _Generation(model)
        used: ToolOutcome | None = None
        if tools:
            assert bot is not None
            question = request.turns[-1].content
            # No conversation: the tools that keep something on one (lead capture, handoff)
            # have nothing to work on.
            stateless = [(tool, config) for tool, config in tools if tool.spec.read_arguments is None]
            try:
                used = calling.answered(
                    await self._use_tools(actor, bot, None, generation, stateless, question)
                )
                if used is not None:
                    yield ToolCalled(used.call)
                    yield ToolReturned(used)
                    exchange = replace(exchange, question=calling.answer_turn(question, used))
                    turns, prompt_tokens = await exchange.prompt(model)
            except TertuliaError as error:
                await self._record_spent(actor, generation, provider, bot_id)
                yield _failed(generation.failure(error), actor)
                return
        fixed = _fixed_answer(bot, knows, sources) if bot is not None and used is None else None
        if fixed is not None:
            yield Token(fixed.text)
            yield Done(fixed.text, Usage(0, 0), model.model_id, sources=fixed.sources)
            return
        wanted = request.max_tokens or (bot.max_reply_tokens if bot is not None else Sampling.max_tokens)
        sampling = Sampling(
            temperature=_first(request.temperature, bot.temperature if bot else None, Sampling.temperature),
            top_p=_first(request.top_p, bot.top_p if bot else None, Sampling.top_p),
            max_tokens=wanted,
            stop=request.stop,
        )
        try:
            async with aclosing(
                generation.run_continued(exchange, turns, prompt_tokens, sampling, request.continuations)
            ) as tokens:
                async for token in tokens:
                    yield token
        except TertuliaError as error:
            await self._record_spent(actor, generation, provider, bot_id)
            yield _failed(generation.failure(error), actor)
            return
        except (GeneratorExit, asyncio.CancelledError):
            # The reader left: what the model produced until then still counts.
            with anyio.CancelScope(shield=True):
                await self._record_spent(actor, generation, provider, bot_id)
            raise
        usage = await self._record_spent(actor, generation, provider, bot_id)
        yield Done(
            generation.text, usage, model.model_id, finish_reason=generation.finish_reason, sources=sources
        )

    async def _use_tools(
        self,
        actor: Principal,
        bot: Bot,
        conversation_id: str | None,
        generation: "_Generation",
        tools: list[tuple[Tool, dict[str, Any]]],
        question: str,
    ) -> list[ToolOutcome]:
        """Runs the bot's tools that the question calls for: first those that read their
        arguments from it (lead capture, a request for a person), then one call the model asks
        for. What asking cost is the reply's first model call."""
        outcomes = []
        for call, tool, config in calling.read_calls(tools, question):
            outcomes.append(await self._run_tool(actor, bot, conversation_id, call, tool, config))
        if calling.final_answer(outcomes) is not None:
            return outcomes
        left = [(tool, config) for tool, config in tools if tool.spec.read_arguments is None]
        call, spent = await calling.plan(generation.model, [tool for tool, _config in left], question)
        if spent.prompt_tokens or spent.completion_tokens:
            generation.calls.append(_Call(spent.prompt_tokens, reported=spent))
        if call is not None:
            tool, config = next((tool, config) for tool, config in left if tool.spec.id == call.name)
            outcomes.append(await self._run_tool(actor, bot, conversation_id, call, tool, config))
        return outcomes

    async def _run_tool(
        self,
        actor: Principal,
        bot: Bot,
        conversation_id: str | None,
        call: ToolCall,
        tool: Tool,
        config: dict[str, Any],
    ) -> ToolOutcome:
        context = ToolContext(
            actor=actor,
            bot=bot,
            conversation_id=conversation_id,
            config=config,
            http=self._models.http(),
            database=self._database,
            retriever=self._retriever,
            options=self._tool_options.get(tool.spec.id, {}),
        )
        outcome = await calling.run(call, tool, context)
        log.info("bot %s used %s: %s", bot.id, call.name, "failed" if outcome.error else "ok")
        return outcome

    async def _record_spent(
        self,
        actor: Principal,
        generation: "_Generation",
        provider: str,
        bot_id: str | None,
        conversation_id: str | None = None,
    ) -> Usage:
        """Records what a model call used that left no message behind (stateless or failed)."""
        usage = await generation.usage()
        if generation.spent:
            async with self._database.session() as session:
                record_usage(
                    session,
                    actor.account_id,
                    usage,
                    provider=provider,
                    model=generation.model.model_id,
                    bot_id=bot_id,
                    conversation_id=conversation_id,
                )
                await session.commit()
        return usage

    async def _save(
        self,
        actor: Principal,
        bot: Bot,
        conversation_id: str,
        question: Question | None,
        generation: _Generation,
        provider: str,
        partial: bool,
        sources: list[Source] | None = None,
        flag: str | None = None,
        tool_calls: Sequence[ToolOutcome] = (),
    ) -> tuple[Message | None, Message, Usage]:
        """Stores the question (None: it is stored already) and the reply, and their usage."""
        model = generation.model
        usage = await generation.usage()
        async with self._database.session() as session:
            # The asking connection learns of both messages from its own stream.
            session.info[ORIGIN] = question.origin if question is not None else None
            conversation = await get_conversation(session, actor, conversation_id)
            asked = None
            if question is not None:
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
                "provider": provider,
                "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            }
            if partial:
                reply_meta["partial"] = True
            if sources is not None:
                reply_meta["sources"] = sources_metadata(sources)
            if flag is not None:  # "no_context", or "verified": a stored answer as written
                reply_meta[flag] = True
            if tool_calls:
                reply_meta["tool_calls"] = [outcome.stored() for outcome in tool_calls]
            reply = Message(
                account_id=actor.account_id,
                conversation_id=conversation.id,
                role="assistant",
                content=generation.text,
                token_count=usage.completion_tokens,
                meta=reply_meta,
            )
            # The reply is stamped after the question so history keeps its order.
            if asked is not None:
                session.add(asked)
                await session.flush()
                reply.created_at = max(utcnow(), asked.created_at)
            session.add(reply)
            await session.flush()
            record_usage(
                session,
                actor.account_id,
                usage,
                provider=provider,
                model=model.model_id,
                bot_id=bot.id,
                conversation_id=conversation.id,
                message_id=reply.id,
            )
            conversation.updated_at = utcnow()
            await session.commit()
        return asked, reply, usage

    async def _related_prompts(
        self, actor: Principal, bot: Bot, question: str, answer: str, reply: Message
    ) -> list[str]:
        """Follow-up questions from the bot's related-prompts model (else its chat model).

        A failure here never spoils the reply that was already given: it is logged, and the
        reply goes out without suggestions.
        """
        try:
            async with self._database.session() as session:
                resolved = await resolve(session, bot, "related_prompts")
                if resolved.choice is None:
                    resolved = await resolve(session, bot, "chat")
            model, provider = self._model(resolved)
            turns = [
                ChatTurn("system", RELATED_INSTRUCTION.format(count=RELATED_PROMPTS)),
                ChatTurn("user", f"Question: {question[:2000]}\n\nAnswer: {answer[:2000]}"),
            ]
            generation = _Generation(model)
            prompt_tokens = await model.count_prompt_tokens(turns)
            sampling = Sampling(temperature=0.3, max_tokens=96)
            async with aclosing(generation.run(turns, prompt_tokens, sampling)) as tokens:
                async for _token in tokens:
                    pass
            related = parse_related(generation.text)
            async with self._database.session() as session:
                stored = await session.get(Message, reply.id)
                if stored is not None:
                    stored.meta = {**stored.meta, "related_prompts": related}
                    reply.meta = stored.meta
                record_usage(
                    session,
                    actor.account_id,
                    await generation.usage(),
                    provider=provider,
                    model=model.model_id,
                    task_type="related_prompts",
                    bot_id=bot.id,
                    conversation_id=reply.conversation_id,
                    message_id=reply.id,
                )
                await session.commit()
            return related
        except TertuliaError as error:
            log.warning("related prompts for bot %s failed: %s", bot.id, error.message)
            return []

    async def _count_error(self, bot_id: str) -> None:
        async with self._database.session() as session:
            bot = await session.get(Bot, bot_id)
            if bot is not None:
                bot.error_count += 1
                await session.commit()


@dataclass(frozen=True)
class _Fixed:
    text: str
    sources: list[Source]
    flag: str


def _fixed_answer(bot: Bot, knows: bool, sources: list[Source]) -> _Fixed | None:
    """An answer that needs no model: the stored answer of the question that matched best,
    when it is to be given as written (CriaBot's `llm_reply: false`), or, with nothing found,
    the bot's no-context message (`no_context_use_message`)."""
    if not knows:
        return None
    if sources and "question" in sources[0].metadata and sources[0].metadata.get("llm_reply") is False:
        return _Fixed(sources[0].content, sources[:1], "verified")
    if not sources and bot.no_context_use_message:
        return _Fixed(bot.no_context_message, [], "no_context")
    return None


def _failed(error: TertuliaError, actor: Principal, conversation_id: str | None = None) -> Failed:
    """The failure event of a reply; a failure that is not the client's doing (the model's, a
    service's) goes in the account's log, once, whichever face renders it."""
    if error.server_side:
        log_failure(
            log,
            error,
            "Failed to process message",
            account_id=actor.account_id,
            conversation_id=conversation_id,
        )
    return Failed(error)


def _first(*values: float | None) -> float:
    return next(value for value in values if value is not None)


async def opening(
    events: AsyncIterator[ChatEvent], raised: Callable[[TertuliaError], bool] = lambda _error: True
) -> ChatEvent | None:
    """For faces that stream: the first event, read before the response starts, so that a
    failure before any of the reply is raised (and the stream closed) as a real error —
    those failures that `raised` picks; the others stay the stream's first event."""
    first = await anext(events, None)
    if isinstance(first, Held):
        await events.aclose()  # type: ignore[attr-defined]
        raise PersonHolds(first)
    if isinstance(first, Failed) and raised(first.error):
        await events.aclose()  # type: ignore[attr-defined]
        raise first.error
    return first


async def _keep_for_person(
    session: AsyncSession, actor: Principal, conversation_id: str, question: Question | None
) -> Message | None:
    """Stores the question for the person who holds the conversation (no model call)."""
    if question is None:
        return None
    await limits.require_room(session, actor, "messages")
    session.info[ORIGIN] = question.origin  # the asking connection hears of it from its stream
    message = Message(
        account_id=actor.account_id,
        conversation_id=conversation_id,
        role="user",
        content=question.content,
        message_type=question.message_type,
        meta=question.metadata,
    )
    session.add(message)
    conversation = await get_conversation(session, actor, conversation_id)
    conversation.updated_at = utcnow()
    await session.commit()
    return message


async def collect_reply(events: AsyncIterator[ChatEvent]) -> Done:
    """For faces that answer in one piece: the finished reply, or the failure raised."""
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, Held):
                raise PersonHolds(event)
            if isinstance(event, Done):
                return event
    raise UpstreamFailed("the model ended without a reply")
