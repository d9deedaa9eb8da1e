"""Chat sessions that start before their bot is known (CriaBot's /bots/chats/start).

A chat is bound to a bot and gets a conversation with its first message; from then on it is
that conversation, seen by every face (its messages, its status). Ending a chat forgets the
session and resolves its conversation, which stays in the account's records.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.conversations import (
    ConversationDraft,
    create_conversation,
    get_conversation,
    list_messages,
)
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.principal import Principal, find_owned
from tertulia.store.tables import Bot, Chat, Conversation, Message

HISTORY_LIMIT = 1000


async def start_chat(session: AsyncSession, actor: Principal) -> Chat:
    """A new chat; a key bound to a bot starts chats with that bot."""
    actor.require("conversations:write")
    chat = Chat(account_id=actor.account_id, bot_id=actor.bot_id)
    session.add(chat)
    await session.commit()
    return chat


async def get_chat(session: AsyncSession, actor: Principal, chat_id: str) -> Chat:
    actor.require("conversations:read")
    return await find_owned(session, actor, Chat, Chat.id == chat_id, missing="chat not found")


async def chat_exists(session: AsyncSession, actor: Principal, chat_id: str) -> bool:
    try:
        await get_chat(session, actor, chat_id)
    except NotFound:
        return False
    return True


async def chat_conversation(session: AsyncSession, actor: Principal, chat_id: str, bot: Bot) -> str:
    """The id of the chat's conversation, made with `bot` on the chat's first message."""
    chat = await get_chat(session, actor, chat_id)
    if chat.bot_id is not None and chat.bot_id != bot.id:
        raise Invalid("this chat is with another bot: start a new chat for this one", {"field": "bot_name"})
    if chat.conversation_id is None:
        conversation = await create_conversation(
            session, actor, ConversationDraft(bot_id=bot.id, platform="api", metadata={"chat_id": chat.id})
        )
        chat.bot_id, chat.conversation_id = bot.id, conversation.id
        await session.commit()
    assert chat.conversation_id is not None
    return chat.conversation_id


async def one_shot_conversation(session: AsyncSession, actor: Principal, chat_id: str, bot: Bot) -> str:
    """A conversation of its own for one exchange in the chat (CriaBot's /query): the chat
    must exist, but its history is neither read nor added to."""
    chat = await get_chat(session, actor, chat_id)
    conversation = await create_conversation(
        session,
        actor,
        ConversationDraft(bot_id=bot.id, platform="api", metadata={"chat_id": chat.id, "one_shot": True}),
    )
    return conversation.id


async def close_one_shot(session: AsyncSession, actor: Principal, conversation_id: str) -> None:
    conversation = await get_conversation(session, actor, conversation_id)
    conversation.status = "resolved"
    await session.commit()


async def chat_history(session: AsyncSession, actor: Principal, chat_id: str) -> list[Message]:
    chat = await get_chat(session, actor, chat_id)
    if chat.conversation_id is None:
        return []
    return (await list_messages(session, actor, chat.conversation_id, HISTORY_LIMIT, 0)).items


async def end_chat(session: AsyncSession, actor: Principal, chat_id: str) -> None:
    actor.require("conversations:write")
    chat = await get_chat(session, actor, chat_id)
    if chat.conversation_id is not None:
        conversation = await session.get(Conversation, chat.conversation_id)
        if conversation is not None:
            conversation.status = "resolved"
    await session.delete(chat)
    await session.commit()
