"""ChatAgent request and response shapes, field for field as chatagent-api.md shows them.

Requests accept snake_case (the document, the Python SDK) and camelCase (the JS SDK).
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
)
from pydantic.alias_generators import to_camel

from tertulia.faces import inputs

Name = Annotated[str, Field(min_length=1, max_length=128)]
Text = Annotated[str, Field(max_length=4000)]
LongText = Annotated[str, Field(max_length=32000)]
Url = Annotated[str, Field(max_length=2048)]
Identifier = Annotated[str, Field(min_length=1, max_length=64)]
Kind = Annotated[str, Field(min_length=1, max_length=32)]
SmallDict = Annotated[dict[str, Any], Field(max_length=64)]


class RequestModel(inputs.RequestModel):
    """ChatAgent's SDKs send camelCase as well as snake_case names."""

    model_config = ConfigDict(
        extra="ignore",
        alias_generator=AliasGenerator(validation_alias=lambda name: AliasChoices(name, to_camel(name))),
    )


# --- auth ------------------------------------------------------------------------------


class RegisterRequest(RequestModel):
    username: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[\w.+-]+$")]
    nickname: Annotated[str, Field(max_length=128)] | None = None
    email: EmailStr
    password: Annotated[str, Field(min_length=8, max_length=256)]
    role: Literal["user"] = "user"


class LoginRequest(RequestModel):
    username: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class UserInfo(BaseModel):
    id: str
    username: str
    nickname: str | None
    email: str
    role: str
    created_at: datetime


class TokenResponse(BaseModel):
    success: bool = True
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user_info: UserInfo


class UserPublic(UserInfo):
    plan: str
    is_active: bool
    updated_at: datetime


class ApiKeyCreate(RequestModel):
    name: Name = "default"
    scopes: Annotated[list[Identifier], Field(max_length=32)] | None = None
    bot_id: Identifier | None = None
    expires_at: AwareDatetime | None = None


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str] | None
    bot_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret. Shown only in this response.")


class ApiKeysPublic(BaseModel):
    api_keys: list[ApiKeyPublic]
    total: int


class Done(BaseModel):
    success: bool = True
    message: str


# --- bots ------------------------------------------------------------------------------


class LlmConfig(RequestModel):
    provider: Identifier | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    api_key: Annotated[str, Field(max_length=512)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    system_prompt: LongText | None = None
    # Tertulia's extensions (CriaBot's bot params, reachable from this face too).
    max_input_tokens: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    related_prompts: bool | None = None


class BotCreate(RequestModel):
    name: Name
    description: Text = ""
    avatar_url: Url | None = None
    platform_type: Kind = "web"
    platform_config: SmallDict = {}
    llm_config: LlmConfig | None = None
    knowledge_base_ids: Annotated[list[Identifier], Field(max_length=100)] = []
    plugins: Annotated[list[Identifier], Field(max_length=50)] = []


class BotUpdate(RequestModel):
    name: Name | None = None
    description: Text | None = None
    avatar_url: Url | None = None
    platform_type: Kind | None = None
    platform_config: SmallDict | None = None
    llm_config: LlmConfig | None = None
    knowledge_base_ids: Annotated[list[Identifier], Field(max_length=100)] | None = None
    plugins: Annotated[list[Identifier], Field(max_length=50)] | None = None


class LlmConfigPublic(BaseModel):
    provider: str
    model: str | None
    temperature: float
    top_p: float
    max_tokens: int
    system_prompt: str
    api_key_set: bool
    max_input_tokens: int
    related_prompts: bool


class BotSummary(BaseModel):
    id: str
    name: str
    description: str
    avatar_url: str | None
    platform_type: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class BotPublic(BotSummary):
    user_id: str
    platform_config: dict[str, Any]
    llm_config: LlmConfigPublic
    knowledge_base_ids: list[str]
    plugins: list[str]


class BotsPublic(BaseModel):
    bots: list[BotSummary]
    total: int
    limit: int
    offset: int


class BotStateChanged(BaseModel):
    success: bool = True
    message: str
    bot_id: str


class BotStatus(BaseModel):
    bot_id: str
    is_running: bool
    is_online: bool
    start_time: datetime | None
    message_count: int
    error_count: int
    last_activity: datetime | None


# --- conversations ---------------------------------------------------------------------

ConversationStatus = Literal["active", "resolved", "unresolved"]


class ConversationCreate(RequestModel):
    bot_id: Identifier
    title: Annotated[str, Field(max_length=256)] = ""
    platform: Kind = "web"
    platform_chat_id: Annotated[str, Field(max_length=256)] | None = None
    context: SmallDict = {}


class ConversationPublic(BaseModel):
    id: str
    user_id: str
    bot_id: str
    title: str
    platform: str
    platform_chat_id: str | None
    status: ConversationStatus
    context: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactBrief(BaseModel):
    """Who the visitor is, as far as the conversation knows (id: the account's contact row)."""

    id: str | None
    name: str | None
    email: str | None
    phone: str | None


class ConversationSummary(BaseModel):
    id: str
    bot_id: str
    title: str
    platform: str
    status: ConversationStatus
    message_count: int
    created_at: datetime
    last_message_at: datetime | None
    # Tertulia's additions for operators (docs/web-channel.md).
    human_requested: bool = False
    operator: str | None = None
    visitor_id: str | None = None
    contact: ContactBrief | None = None


class TakeOver(RequestModel):
    name: Annotated[str, Field(max_length=128)] | None = None


class OperatorMessage(RequestModel):
    content: Annotated[str, Field(min_length=1, max_length=32000)]
    name: Annotated[str, Field(max_length=128)] | None = None


class StatusChange(RequestModel):
    status: ConversationStatus


class ConversationsPublic(BaseModel):
    conversations: list[ConversationSummary]
    total: int
    limit: int
    offset: int


class MessagePublic(BaseModel):
    id: str
    conversation_id: str
    content: str
    message_type: str
    sender_type: str
    sender_id: str
    created_at: datetime
    metadata: dict[str, Any]


class MessageCreate(RequestModel):
    content: Annotated[str, Field(min_length=1, max_length=32000)]
    message_type: Literal["text"] = "text"
    metadata: SmallDict = {}


class Exchange(BaseModel):
    user_message: MessagePublic
    bot_response: MessagePublic


class MessagesPublic(BaseModel):
    messages: list[MessagePublic]
    total: int
    limit: int
    offset: int


# --- knowledge bases -------------------------------------------------------------------


class KnowledgeBaseCreate(RequestModel):
    name: Name
    description: Text = ""
    vector_store_type: Identifier = "builtin"
    embedding_model: Annotated[str, Field(max_length=256)] | None = None
    chunk_size: Annotated[int, Field(ge=50, le=8000)] = 1000
    chunk_overlap: Annotated[int, Field(ge=0, le=4000)] = 200
    chunking_strategy: Identifier = "structured"
    metadata: SmallDict = {}


class KnowledgeBasePublic(BaseModel):
    id: str
    user_id: str
    name: str
    description: str
    vector_store_type: str
    embedding_model: str | None
    chunk_size: int
    chunk_overlap: int
    chunking_strategy: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class KnowledgeBasesPublic(BaseModel):
    knowledge_bases: list[KnowledgeBasePublic]
    total: int
    limit: int
    offset: int


class JobPublic(BaseModel):
    id: str
    kind: str
    status: str
    stage: str | None
    progress: float
    stages: dict[str, float] = Field(description="Seconds spent in each finished stage")
    error: str | None
    knowledge_base_id: str | None
    document_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = Field(
        default=None, description="What the job made: a multimodal batch's results, file by file"
    )


class DocumentPublic(BaseModel):
    id: str
    knowledge_base_id: str
    name: str
    source_type: str
    media_type: str | None
    size_bytes: int
    status: str
    error: str | None
    chunk_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class DocumentAccepted(DocumentPublic):
    job: JobPublic


class DocumentsPublic(BaseModel):
    documents: list[DocumentPublic]
    total: int
    limit: int
    offset: int


class TextDocumentCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=512)]
    content: Annotated[str, Field(min_length=1, max_length=5_000_000)]
    metadata: SmallDict = {}


class UrlDocumentCreate(RequestModel):
    url: Annotated[str, Field(min_length=8, max_length=2048)]
    name: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    metadata: SmallDict = {}


class QuestionAnswer(RequestModel):
    question: Annotated[str, Field(min_length=1, max_length=4000)]
    answer: Annotated[str, Field(min_length=1, max_length=32000)]


class QaDocumentCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=512)]
    pairs: Annotated[list[QuestionAnswer], Field(min_length=1, max_length=10_000)]
    metadata: SmallDict = {}


class SearchRequest(RequestModel):
    query: Annotated[str, Field(min_length=1, max_length=4000)]
    top_k: Annotated[int, Field(ge=1, le=100)] = 5
    score_threshold: Annotated[float, Field(ge=-1, le=1)] | None = None
    filters: SmallDict = {}
    # Tertulia's extensions: which legs, and how they are fused.
    mode: Literal["hybrid", "vector", "text"] = "hybrid"
    fusion: Literal["gated", "convex", "rrf"] = "gated"
    rerank: "RerankModel | None" = None


class RerankModel(RequestModel):
    provider: Identifier
    model: Annotated[str, Field(min_length=1, max_length=256)]


class SearchResult(BaseModel):
    content: str
    metadata: dict[str, Any]
    score: float
    document_id: str
    chunk_id: str


class SearchResults(BaseModel):
    results: list[SearchResult]
    total: int
    query_time: float


# --- health ----------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    uptime: float
    version: str


# --- plugins ---------------------------------------------------------------------------


class PluginPublic(BaseModel):
    id: str
    name: str
    description: str
    version: str
    author: str
    category: str
    config_schema: dict[str, dict[str, Any]]
    parameters: dict[str, Any]


class PluginsAvailable(BaseModel):
    plugins: list[PluginPublic]


class PluginInstall(RequestModel):
    config: dict[str, Any] = {}
    enabled: bool = True


class BotPluginPublic(BaseModel):
    bot_id: str
    plugin_id: str
    name: str
    enabled: bool
    config: dict[str, Any]


class BotPluginsPublic(BaseModel):
    plugins: list[BotPluginPublic]
    total: int


# --- multimodal processing -------------------------------------------------------------------

Side = Annotated[int, Field(ge=1, le=10_000)]


class MultimodalOptions(inputs.RequestModel):
    """The `options` form field of /multimodal/process and /batch-process, as JSON."""

    extract_text: bool = Field(default=True, description="OCR for images and video frames; a document's text")
    extract_images: bool = Field(default=False, description="Keep a video's key frames as files")
    extract_audio: bool = Field(default=False, description="Keep the sound (16 kHz mono WAV) as a file")
    transcribe: bool = Field(default=True, description="Speech to text for audio and a video's sound")
    detect_faces: bool = False
    resize: tuple[Side, Side] | None = Field(default=None, description="[width, height] to fit within")
    compress: bool = False
    quality: Annotated[int, Field(ge=1, le=100)] = 80
    format: str | None = Field(default=None, description="Convert an image to jpeg, png, webp, gif or bmp")
    thumbnail: bool = Field(default=True, description="Make a 256-pixel JPEG thumbnail of an image")
    ocr_languages: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(
        default=None, max_length=8, description="Tesseract languages (spa, chi_sim, eng …)"
    )
    language: Annotated[str, Field(min_length=2, max_length=8)] | None = Field(
        default=None, description="The speech's language (ISO 639-1), if known"
    )
    max_frames: int | None = Field(default=None, description="Key frames to take from a video")
    conversation_id: str | None = Field(default=None, description="Add the text to this conversation")
    message_role: str = Field(default="user", description="user, assistant or system")
    knowledge_base_id: str | None = Field(default=None, description="Add the result to this knowledge base")


class MediaFilePublic(BaseModel):
    id: str
    name: str
    media_type: str
    size: int
    url: str = Field(description="Where its owner downloads it (with the same credentials)")
    metadata: dict[str, Any]
    source_name: str
    created_at: datetime
    expires_at: datetime


class MediaFilesPublic(BaseModel):
    files: list[MediaFilePublic]
    total: int
    limit: int
    offset: int


class MultimodalResult(BaseModel):
    success: bool = True
    file_name: str
    media_type: str = Field(description="image, audio, video, document or spreadsheet")
    content: str
    metadata: dict[str, Any]
    processed_files: list[str] = Field(description="Download URLs of the files made, ending in their names")
    files: list[MediaFilePublic]
    processing_time: float
    delivered: dict[str, Any] | None = Field(
        default=None, description="Where the text went: message_id, document_id and job_id"
    )


class MultimodalFailure(BaseModel):
    success: bool = False
    file_name: str
    error: dict[str, Any] = Field(description="code, message and details, as in the error envelope")


class MultimodalBatch(BaseModel):
    success: bool = Field(description="Whether every file was processed")
    status: str = Field(description="done, or queued / running while the job goes on")
    total: int
    succeeded: int
    failed: int
    results: list[MultimodalResult | MultimodalFailure]
    job: JobPublic


class MultimodalFormats(BaseModel):
    formats: dict[str, list[str]]
    capabilities: dict[str, Any]
    limits: dict[str, Any]


# --- monitoring ------------------------------------------------------------------------


class MetricsPublic(BaseModel):
    """The document's fields, then Tertulia's. An admin's figures are the whole server's
    (`scope` "server"); anyone else's are the account's own (`scope` "account"), and the
    machine's fields (cpu_usage, memory_usage, disk_usage, active_connections) are null."""

    cpu_usage: float | None  # percent, of the machine that answered
    memory_usage: float | None
    disk_usage: float | None  # percent, of the disk holding the data
    active_connections: int | None  # open requests and WebSockets, every server process
    total_requests: int
    error_rate: float  # share of the requests answered 5xx
    average_response_time: float | None  # milliseconds to the last byte; null: no request
    timestamp: datetime
    scope: Literal["server", "account"]
    start_time: datetime
    end_time: datetime
    client_error_rate: float  # share answered 4xx
    p50_response_time: float | None
    p95_response_time: float | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    active_conversations: int


class LogPublic(BaseModel):
    timestamp: datetime
    level: str
    message: str
    module: str
    details: dict[str, Any]


class LogsPublic(BaseModel):
    logs: list[LogPublic]
    total: int
    limit: int
    offset: int
