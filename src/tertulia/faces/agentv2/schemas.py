"""Agent v2's request and response bodies (agent-v2-api.txt): camelCase, as documented."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tertulia.faces.inputs import RequestModel

Name = Annotated[str, Field(min_length=1, max_length=128)]
Text = Annotated[str, Field(max_length=32_000)]
Identifier = Annotated[str, Field(min_length=1, max_length=64)]


class DatastoreTool(RequestModel):
    type: Literal["datastore"]
    datastoreId: Identifier


Tool = Literal["datastore", "lead-capture", "request-human"] | DatastoreTool


class AgentCreate(RequestModel):
    name: Name
    description: Text = ""
    systemPrompt: Text = ""
    modelName: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    tools: Annotated[list[Tool], Field(max_length=50)] = []
    status: Literal["active", "inactive"] = "active"


class AgentUpdate(RequestModel):
    name: Name | None = None
    description: Text | None = None
    systemPrompt: Text | None = None
    modelName: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    tools: Annotated[list[Tool], Field(max_length=50)] | None = None
    status: Literal["active", "inactive"] | None = None


class AgentPublic(BaseModel):
    id: str
    name: str
    description: str
    systemPrompt: str
    modelName: str
    temperature: float
    tools: list[str | dict[str, str]]
    status: str
    createdAt: str
    updatedAt: str


class Paged(BaseModel):
    """Every list: a page of `data`, `total` items, and whether more follow this page."""

    total: int
    limit: int
    offset: int
    hasMore: bool


class AgentList(Paged):
    data: list[AgentPublic]


class Contact(RequestModel):
    email: Annotated[str, Field(max_length=320)] | None = None
    firstName: Annotated[str, Field(max_length=128)] | None = None
    lastName: Annotated[str, Field(max_length=128)] | None = None
    phoneNumber: Annotated[str, Field(max_length=64)] | None = None


class ChatRequest(RequestModel):
    query: Annotated[str, Field(min_length=1, max_length=32_000)]
    conversationId: Identifier | None = None
    visitorId: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    streaming: bool = False
    contact: Contact | None = None


class SourceRef(BaseModel):
    source: str
    score: float


class ChatResponse(BaseModel):
    answer: str
    conversationId: str
    messageId: str
    sources: list[SourceRef]


class ConversationPublic(BaseModel):
    id: str
    agentId: str
    status: str
    humanRequested: bool
    messagesCount: int
    contact: dict[str, str]
    visitorId: str | None
    createdAt: str
    updatedAt: str


class ConversationList(Paged):
    data: list[ConversationPublic]


class MessagePublic(BaseModel):
    id: str
    role: str
    content: str
    sources: list[SourceRef]
    createdAt: str


class MessageList(Paged):
    data: list[MessagePublic]


class StatusUpdate(RequestModel):
    status: Literal["open", "resolved", "unresolved"]


class DatastoreCreate(RequestModel):
    name: Name
    description: Text = ""


class DatastorePublic(BaseModel):
    id: str
    name: str
    description: str
    createdAt: str


class DatastoreList(Paged):
    data: list[DatastorePublic]


class DatastoreQuery(RequestModel):
    query: Annotated[str, Field(min_length=1, max_length=4000)]
    topK: Annotated[int, Field(ge=1, le=100)] = 5


class ResultSource(BaseModel):
    name: str


class QueryResult(BaseModel):
    content: str
    score: float
    source: ResultSource


class QueryResults(BaseModel):
    results: list[QueryResult]


class UrlSource(RequestModel):
    url: Annotated[str, Field(min_length=8, max_length=2048)]


class TextSource(RequestModel):
    content: Annotated[str, Field(min_length=1, max_length=5_000_000)]
    name: Annotated[str, Field(min_length=1, max_length=512)]


class SourcePublic(BaseModel):
    id: str
    name: str
    type: str
    status: str
    error: str | None
    jobId: str | None
    createdAt: str


class SourceList(Paged):
    data: list[SourcePublic]


class Deleted(BaseModel):
    id: str
    deleted: bool = True


def stamp(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")
