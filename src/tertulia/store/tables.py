"""SQLAlchemy models for every row Tertulia keeps; each belongs to exactly one account."""

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tertulia.store.sealed import Sealed

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix (`bot_…`, `conv_…`)."""
    return f"{prefix}_{secrets.token_hex(10)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; SQLite hands them back naive, so they are re-marked as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def managed_by_models(name: str | None, type_: str, _parent_names: Any = None) -> bool:
    """For schema comparison: the full-text index (FTS5 tables, the GIN index) and the
    pgvector table (store.pgvector) are the migrations' own, engine-specific, and not
    described by these models."""
    return not (name or "").startswith(("chunks_fts", "chunk_vectors"))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServerState(Base):
    """Server-wide values every process must agree on (the generated signing key)."""

    __tablename__ = "server_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Account(Timestamps, Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    nickname: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="user")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    plan: Mapped[str] = mapped_column(String(32), default="standard")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=dict)  # null: {}
    # What its parent lets a sub-account have (core.limits); None: no limits.
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # None: everything the account may do; a list: only those "resource:action" scopes.
    scopes: Mapped[list[Any] | None] = mapped_column(JSON)
    bot_id: Mapped[str | None] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    # None: any route; a list: only request paths matching one of these globs (`*` one
    # segment, `**` any depth, a leading `!` excludes), relative to a face's /v1 or /api/v1.
    allowed_routes: Mapped[list[Any] | None] = mapped_column(JSON)
    # "key": made to be kept; "session": minted for one conversation or sub-account for a
    # while (ChatBotKit's session/create), not listed with the keys.
    kind: Mapped[str] = mapped_column(String(16), default="key", server_default="key")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


bot_knowledge_bases = Table(
    "bot_knowledge_bases",
    Base.metadata,
    Column("bot_id", ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True),
    Column("knowledge_base_id", ForeignKey("knowledge_bases.id", ondelete="CASCADE"), primary_key=True),
)


class Bot(Timestamps, Base):
    __tablename__ = "bots"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_bots_account_name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bot"))
    # A small integer for faces whose ids are numbers (CriaBot's `info.id`), unique server-wide.
    number: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    platform_type: Mapped[str] = mapped_column(String(32), default="web")
    platform_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    plugins: Mapped[list[Any]] = mapped_column(default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None]
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    # The chat model and its sampling settings; other task types route through ModelSpec.
    llm_provider: Mapped[str] = mapped_column(String(64), default="local")
    llm_model: Mapped[str | None] = mapped_column(String(256))
    llm_api_key: Mapped[str | None] = mapped_column(Sealed)
    temperature: Mapped[float] = mapped_column(Float, default=0.7)
    top_p: Mapped[float] = mapped_column(Float, default=1.0)
    # Answering and retrieval parameters (CriaBot's names; ChatAgent's max_tokens is max_reply_tokens).
    max_input_tokens: Mapped[int] = mapped_column(Integer, default=3000)
    max_reply_tokens: Mapped[int] = mapped_column(Integer, default=512)
    top_k: Mapped[int] = mapped_column(Integer, default=8)
    min_k: Mapped[float] = mapped_column(Float, default=0.0)
    top_n: Mapped[int] = mapped_column(Integer, default=4)
    min_n: Mapped[float] = mapped_column(Float, default=0.0)
    no_context_message: Mapped[str] = mapped_column(
        Text, default="I could not find anything about that in my documents."
    )
    no_context_use_message: Mapped[bool] = mapped_column(Boolean, default=True)
    no_context_llm_guess: Mapped[bool] = mapped_column(Boolean, default=False)
    llm_generate_related_prompts: Mapped[bool] = mapped_column(Boolean, default=False)
    # The abilities the bot may use (ChatBotKit); no foreign key, core.skillsets clears it.
    skillset_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # Null for bots made before it existed (a JSON server default cannot be compared on PostgreSQL).
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=dict)
    # The web widget's settings (allowed origins, theme, greeting …; core.widget); null: none yet.
    widget: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    knowledge_bases: Mapped[list["KnowledgeBase"]] = relationship(
        secondary=bot_knowledge_bases, lazy="selectin", order_by="KnowledgeBase.created_at"
    )
    models: Mapped[list["ModelSpec"]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ModelSpec.created_at",
    )


class ModelSpec(Base):
    """One entry of a bot's toolbox: which model serves which task type."""

    __tablename__ = "model_specs"
    __table_args__ = (UniqueConstraint("bot_id", "task_type", name="uq_model_specs_bot_task"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mdl"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(256))
    task_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeBase(Timestamps, Base):
    __tablename__ = "knowledge_bases"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("kb"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    embedding_model: Mapped[str | None] = mapped_column(String(256))
    chunk_size: Mapped[int] = mapped_column(Integer, default=1000)
    chunk_overlap: Mapped[int] = mapped_column(Integer, default=200)
    chunking_strategy: Mapped[str] = mapped_column(
        String(16), default="structured", server_default="structured"
    )
    vector_store_type: Mapped[str] = mapped_column(String(32), default="builtin")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Bumped in the transaction that changes the base's chunks: caches key on it.
    index_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set for a bot's own documents (Bytchat's /train, CriaBot's documents): its implicit base.
    owner_bot_id: Mapped[str | None] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)


class Conversation(Timestamps, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_account_bot", "account_id", "bot_id"),
        Index("ix_conversations_bot_visitor", "bot_id", "visitor_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("conv"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(256), default="")
    platform: Mapped[str] = mapped_column(String(32), default="web")
    platform_chat_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="open")
    visitor_id: Mapped[str | None] = mapped_column(String(128))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The contact talking (core.contacts clears it when the contact is deleted).
    contact_id: Mapped[str | None] = mapped_column(String(40), index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    message_type: Mapped[str] = mapped_column(String(16), default="text")
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderCredential(Timestamps, Base):
    """An account's own key (and base URL) for a model provider; the key is sealed at rest."""

    __tablename__ = "provider_credentials"
    __table_args__ = (UniqueConstraint("account_id", "provider", name="uq_provider_credentials_account"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cred"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(64))
    api_key: Mapped[str | None] = mapped_column(Sealed)
    base_url: Mapped[str | None] = mapped_column(String(2048))


class AccountModel(Timestamps, Base):
    """An account's default model for a task type, used by bots that did not choose one."""

    __tablename__ = "account_models"
    __table_args__ = (UniqueConstraint("account_id", "task_type", name="uq_account_models_account_task"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("amdl"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    task_type: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(256))


class UsageRecord(Base):
    """Tokens one model call used. Kept when its conversation or bot is deleted (quotas)."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_account_created", "account_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("use"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    bot_id: Mapped[str | None] = mapped_column(String(40), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(40))
    task_type: Mapped[str] = mapped_column(String(32), default="chat")
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Timestamps, Base):
    """A document in a knowledge base. Its chunks of the live `generation` are searchable;
    a replacement's chunks are written under the next generation and take over in one commit."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("knowledge_base_id", "name", name="uq_documents_base_name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("doc"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    knowledge_base_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    source_type: Mapped[str] = mapped_column(String(16))  # file, url, text, nodes, qa
    media_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, processing, ready, failed
    error: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # 0: nothing searchable yet
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(40))  # the latest job; older ones step aside
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # What a text document was given as (its latest version), for faces that return it whole.
    text: Mapped[str | None] = mapped_column(Text)


class Chunk(Base):
    """A piece of a document as the index sees it. The integer id is internal (FTS5's rowid);
    outside the store a chunk is named by its document and position."""

    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_document_generation", "document_id", "generation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    knowledge_base_id: Mapped[str] = mapped_column(String(40), index=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)


class Job(Base):
    """Background work (ingesting a document, processing a batch of media) and how far it got;
    the source of truth for its status whichever runner executes it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    knowledge_base_id: Mapped[str | None] = mapped_column(String(40), index=True)
    document_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done, failed
    stage: Mapped[str | None] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stages: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # stage → seconds
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)  # the upload, dropped when done
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what it made (a media batch's results)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A runner that may die without a word (a Celery worker) holds a running job only until
    # then, renewing it while it works; once past, another runner may take the job over.
    lease_expires_at: Mapped[datetime | None]


class CatalogModel(Base):
    """A model the server can use, numbered once and for good (CriaBot's `llm_model_id` …).

    Server-wide, like ServerState: a number names the same model for every account.
    """

    __tablename__ = "catalog_models"
    __table_args__ = (
        UniqueConstraint("provider", "model_id", "task_type", name="uq_catalog_models_provider_model_task"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(256))
    task_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Chat(Base):
    """A chat session started before its bot is known (CriaBot's /bots/chats/start): bound to
    a bot and a conversation by its first message."""

    __tablename__ = "chats"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("chat"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    bot_id: Mapped[str | None] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Timestamps, Base):
    """Someone an account's bots talk to, known by a fingerprint of the account's choosing."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("account_id", "fingerprint", name="uq_contacts_account_fingerprint"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ct"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(256))
    nick: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    preferences: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class File(Timestamps, Base):
    """A file an account stored (ChatBotKit files): its bytes live in the database, so every
    API process serves them alike; they are loaded only when asked for."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("file"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    media_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str | None] = mapped_column(String(64))  # None: nothing uploaded yet
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # The one upload a signed URL allows: the digest of its secret, what it must carry, until when.
    upload_digest: Mapped[str | None] = mapped_column(String(64))
    upload_size: Mapped[int | None] = mapped_column(Integer)
    upload_type: Mapped[str | None] = mapped_column(String(128))
    upload_expires_at: Mapped[datetime | None]


class DatasetFile(Base):
    """A file attached to a knowledge base: its content is indexed there as one document."""

    __tablename__ = "dataset_files"
    __table_args__ = (UniqueConstraint("knowledge_base_id", "file_id", name="uq_dataset_files_base_file"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dsf"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    knowledge_base_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="source")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Skillset(Timestamps, Base):
    """A named set of abilities a bot can be given (ChatBotKit skillsets)."""

    __tablename__ = "skillsets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sks"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Ability(Timestamps, Base):
    """One ability of a skillset: what it is for and the instruction that carries it out."""

    __tablename__ = "abilities"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("abl"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    skillset_id: Mapped[str] = mapped_column(ForeignKey("skillsets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    linked_bot_id: Mapped[str | None] = mapped_column(String(40))
    linked_file_id: Mapped[str | None] = mapped_column(String(40))


class BotPlugin(Timestamps, Base):
    """A tool installed on a bot (ChatAgent's plugins) with its settings, sealed at rest since
    they may hold keys. Whether it is on is the bot's `plugins` list, which every face reads."""

    __tablename__ = "bot_plugins"
    __table_args__ = (UniqueConstraint("bot_id", "plugin_id", name="uq_bot_plugins_bot_plugin"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bplg"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    bot_id: Mapped[str] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    plugin_id: Mapped[str] = mapped_column(String(64))
    config: Mapped[str] = mapped_column(Sealed)  # JSON text


class MediaFile(Base):
    """A file multimodal processing made (a resized image, a thumbnail, a video frame), kept
    for its owner to download until `expires_at`; its bytes live in the database, so every
    API process serves them alike, and are loaded only when asked for."""

    __tablename__ = "media_files"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mf"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # The bot a bot-bound key made it for: such a key reaches only its own files.
    bot_id: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    source_name: Mapped[str] = mapped_column(String(512), default="")  # the upload it was made from
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class RequestRecord(Base):
    """One HTTP request a face answered: who asked (None before anyone is known), what, how
    it ended and how long it took. Written in batches from memory (core.monitoring), pruned
    after the retention; no foreign key, so that a batch never fails on an account deleted
    since its requests were made."""

    __tablename__ = "request_records"
    __table_args__ = (Index("ix_request_records_account_created", "account_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    account_id: Mapped[str | None] = mapped_column(String(40))
    face: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(256))  # the route's template, not the path asked
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    request_id: Mapped[str | None] = mapped_column(String(128))


class LogEntry(Base):
    """A log record of Tertulia's own, of level WARNING or above: the account's when it came
    from its request or its job (a model failure, a 5xx, an ingestion failure), else the
    server's (account None, shown to admins only)."""

    __tablename__ = "log_entries"
    __table_args__ = (Index("ix_log_entries_account_created", "account_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    account_id: Mapped[str | None] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(16))
    level_number: Mapped[int] = mapped_column(Integer)  # logging's: WARNING 30, ERROR 40 …
    module: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ServerProcess(Base):
    """A running API process, as it last said (every few seconds): how many requests and
    WebSockets it has open. A row not renewed for a while belongs to a process that died."""

    __tablename__ = "server_processes"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    websockets: Mapped[int] = mapped_column(Integer, default=0)
