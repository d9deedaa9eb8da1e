"""ChatAgent /conversations: create, list, read, delete, and the message history."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from tertulia.core import conversations, handoff
from tertulia.core.chat import Question, collect_reply
from tertulia.faces.chatagent.bots import Limit, Offset
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import (
    ContactBrief,
    ConversationCreate,
    ConversationPublic,
    ConversationsPublic,
    ConversationStatus,
    ConversationSummary,
    Done,
    Exchange,
    MessageCreate,
    MessagePublic,
    MessagesPublic,
    OperatorMessage,
    StatusChange,
    TakeOver,
)
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.store.tables import Contact, Conversation, Message

router = APIRouter(prefix="/conversations", tags=["conversations"])

# ChatAgent calls an open conversation "active".
TO_CORE_STATUS = {"active": "open", "resolved": "resolved", "unresolved": "unresolved"}
FROM_CORE_STATUS = {core: face for face, core in TO_CORE_STATUS.items()}
SENDER_TYPES = {"user": "user", "assistant": "bot", "operator": "agent", "system": "system", "tool": "tool"}


def conversation_public(conversation: Conversation) -> ConversationPublic:
    return ConversationPublic(
        id=conversation.id,
        user_id=conversation.account_id,
        bot_id=conversation.bot_id,
        title=conversation.title,
        platform=conversation.platform,
        platform_chat_id=conversation.platform_chat_id,
        status=FROM_CORE_STATUS[conversation.status],
        context=conversation.meta,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


def message_public(conversation: Conversation, message: Message) -> MessagePublic:
    from_bot = message.role == "assistant"
    return MessagePublic(
        id=message.id,
        conversation_id=message.conversation_id,
        content=message.content,
        message_type=message.message_type,
        sender_type=SENDER_TYPES[message.role],
        sender_id=conversation.bot_id if from_bot else message.meta.get("sender_id", conversation.account_id),
        created_at=message.created_at,
        metadata=message.meta,
    )


@router.post("/", status_code=status.HTTP_201_CREATED)
@router.post("", status_code=status.HTTP_201_CREATED, include_in_schema=False)
async def create_conversation(
    body: ConversationCreate, principal: CurrentPrincipal, session: SessionDep
) -> ConversationPublic:
    conversation = await conversations.create_conversation(
        session,
        principal,
        conversations.ConversationDraft(
            bot_id=body.bot_id,
            title=body.title,
            platform=body.platform,
            platform_chat_id=body.platform_chat_id,
            metadata=body.context,
        ),
    )
    return conversation_public(conversation)


@router.get("/")
@router.get("", include_in_schema=False)
async def list_conversations(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    bot_id: Annotated[str | None, Query(max_length=64)] = None,
    status: ConversationStatus | None = None,
    human_requested: bool | None = None,
) -> ConversationsPublic:
    filters = conversations.ConversationFilters(
        bot_id, TO_CORE_STATUS[status] if status else None, human_requested
    )
    page = await conversations.list_conversations(session, principal, filters, limit, offset)
    return ConversationsPublic(
        conversations=[
            ConversationSummary(
                id=item.conversation.id,
                bot_id=item.conversation.bot_id,
                title=item.conversation.title,
                platform=item.conversation.platform,
                status=FROM_CORE_STATUS[item.conversation.status],
                message_count=item.message_count,
                created_at=item.conversation.created_at,
                last_message_at=item.last_message_at,
                human_requested=bool(item.conversation.meta.get("human_requested")),
                operator=handoff.held_by(item.conversation),
                visitor_id=item.conversation.visitor_id,
                contact=_contact_brief(item.conversation, item.contact),
            )
            for item in page.items
        ],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


def _contact_brief(conversation: Conversation, contact: Contact | None) -> ContactBrief | None:
    """The account's contact row when linked, else what lead capture kept on the conversation."""
    if contact is not None:
        return ContactBrief(id=contact.id, name=contact.name, email=contact.email, phone=contact.phone)
    kept = conversation.meta.get("contact")
    if not isinstance(kept, dict) or not kept:
        return None
    name = " ".join(part for part in (kept.get("firstName"), kept.get("lastName")) if part) or None
    return ContactBrief(id=None, name=name, email=kept.get("email"), phone=kept.get("phoneNumber"))


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: str, principal: CurrentPrincipal, session: SessionDep
) -> ConversationPublic:
    return conversation_public(await conversations.get_conversation(session, principal, conversation_id))


@router.delete("/{conversation_id}")
async def delete_conversation(conversation_id: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await conversations.delete_conversation(session, principal, conversation_id)
    return Done(message="Conversation deleted")


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> MessagesPublic:
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    page = await conversations.list_messages(session, principal, conversation_id, limit, offset)
    return MessagesPublic(
        messages=[message_public(conversation, message) for message in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/{conversation_id}/messages")
async def send_message(
    conversation_id: str,
    body: MessageCreate,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    session: SessionDep,
) -> Exchange:
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    question = Question(body.content, body.message_type, body.metadata)
    done = await collect_reply(runtime.chat.reply(principal, conversation.id, question))
    return Exchange(
        user_message=message_public(conversation, done.user_message),
        bot_response=message_public(conversation, done.reply),
    )


# --- operators: a person takes a conversation over, answers, hands it back --------------


@router.post("/{conversation_id}/takeover")
async def take_over(
    conversation_id: str, body: TakeOver, principal: CurrentPrincipal, session: SessionDep
) -> ConversationPublic:
    return conversation_public(await handoff.take_over(session, principal, conversation_id, body.name))


@router.post("/{conversation_id}/handback")
async def hand_back(
    conversation_id: str, principal: CurrentPrincipal, session: SessionDep
) -> ConversationPublic:
    return conversation_public(await handoff.hand_back(session, principal, conversation_id))


@router.post("/{conversation_id}/operator-messages", status_code=status.HTTP_201_CREATED)
async def operator_message(
    conversation_id: str, body: OperatorMessage, principal: CurrentPrincipal, session: SessionDep
) -> MessagePublic:
    message = await handoff.operator_reply(session, principal, conversation_id, body.content, body.name)
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    return message_public(conversation, message)


@router.put("/{conversation_id}/status")
async def set_status(
    conversation_id: str, body: StatusChange, principal: CurrentPrincipal, session: SessionDep
) -> ConversationPublic:
    principal.require_not_visitor("change a conversation's status")
    changed = await conversations.set_status(session, principal, conversation_id, TO_CORE_STATUS[body.status])
    return conversation_public(changed)
