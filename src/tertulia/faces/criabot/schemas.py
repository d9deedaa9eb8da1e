"""CriaBot's request and response bodies (criabot-api.md), field for field."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from tertulia.faces.inputs import RequestModel

BotName = Annotated[str, Field(min_length=1, max_length=128)]
ModelNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Envelope(BaseModel):
    status: int = 200
    message: str
    timestamp: int
    code: str = "SUCCESS"


class Params(RequestModel):
    """The bot's hyperparameters, every one honoured by the chat engine."""

    max_input_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    max_reply_tokens: Annotated[int, Field(ge=1, le=100_000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1, le=100)] | None = None
    min_k: Annotated[float, Field(ge=-1, le=1)] | None = None
    top_n: Annotated[int, Field(ge=1, le=100)] | None = None
    min_n: Annotated[float, Field(ge=-1, le=1)] | None = None
    llm_generate_related_prompts: bool | None = None
    no_context_message: Annotated[str, Field(max_length=4000)] | None = None
    no_context_use_message: bool | None = None
    no_context_llm_guess: bool | None = None
    system_message: Annotated[str, Field(max_length=32_000)] | None = None


class BotConfig(Params):
    llm_model_id: ModelNumber | None = None
    embedding_model_id: ModelNumber | None = None
    rerank_model_id: ModelNumber | None = None


class BotCreated(Envelope):
    bot_api_key: str


class AboutInfo(BaseModel):
    name: str
    id: int
    created: str


class AboutParams(BaseModel):
    max_input_tokens: int
    max_reply_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_k: float
    top_n: int
    min_n: float
    llm_generate_related_prompts: bool
    no_context_message: str
    no_context_use_message: bool
    no_context_llm_guess: bool
    system_message: str | None
    bot_id: int
    id: int


class About(BaseModel):
    info: AboutInfo
    params: AboutParams


class AboutResponse(Envelope):
    about: About


class ChatStarted(Envelope):
    chat_id: str


class ChatSend(RequestModel):
    prompt: Annotated[str, Field(min_length=1, max_length=32_000)]
    bot_name: BotName
    extra_bots: Annotated[list[BotName], Field(max_length=20)] = []


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RelatedPrompt(BaseModel):
    label: str
    prompt: str


class SourcePublic(BaseModel):
    document_name: str
    content: str
    score: float
    metadata: dict[str, Any]


class Reply(BaseModel):
    message: str
    completion_usage: CompletionUsage
    related_prompts: list[RelatedPrompt]
    sources: list[SourcePublic]


class ReplyResponse(Envelope):
    reply: Reply


class Block(BaseModel):
    block_type: str = "text"
    text: str


class HistoryMessage(BaseModel):
    role: str
    blocks: list[Block]
    additional_kwargs: dict[str, Any]
    metadata: dict[str, Any]


class HistoryResponse(Envelope):
    history: list[HistoryMessage]


class ExistsResponse(Envelope):
    exists: bool


class Node(RequestModel):
    text: Annotated[str, Field(max_length=1_000_000)]
    metadata: Annotated[dict[str, Any], Field(max_length=64)] = {}


class NodesContents(RequestModel):
    nodes: Annotated[list[Node], Field(min_length=1, max_length=10_000)]
    assets: list[Any] = []


class DocumentUpload(RequestModel):
    file_name: Annotated[str, Field(min_length=1, max_length=512)]
    file_contents: NodesContents
    file_metadata: Annotated[dict[str, Any], Field(max_length=64)] = {}


class QuestionContents(RequestModel):
    questions: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=4000)]], Field(min_length=1, max_length=1000)
    ]
    answer: Annotated[str, Field(min_length=1, max_length=32_000)]
    llm_reply: bool = True


class QuestionUpload(RequestModel):
    file_name: Annotated[str, Field(min_length=1, max_length=512)]
    file_contents: QuestionContents
    file_metadata: Annotated[dict[str, Any], Field(max_length=64)] = {}


class Indexed(Envelope):
    document_name: str
    token_usage: int


class DocumentNames(Envelope):
    document_names: list[str]
