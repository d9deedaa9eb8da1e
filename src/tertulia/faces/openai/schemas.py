"""OpenAI request and response shapes (the subset Tertulia serves), as the `openai` client
sends and reads them."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tertulia.faces.inputs import refuse_nul


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_nul(value, info.field_name or "value")


def one_or_many(value: Any) -> Any:
    """OpenAI takes a single string wherever it takes a list of them (`stop`, `input`).

    Read as a one-item list, so that an error names the field and what is wrong with the
    list, rather than the member of a `str | list[str]` union that failed first.
    """
    return [value] if isinstance(value, str) else value


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessageIn(Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=128_000)] | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(Request):
    include_usage: bool = False


class ChatCompletionRequest(Request):
    model: Annotated[str, Field(min_length=1, max_length=300)]
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=1000)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    stop: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=4)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    user: Annotated[str, Field(max_length=256)] | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_is_a_list(cls, value: Any) -> Any:
        return one_or_many(value)


class EmbeddingRequest(Request):
    model: Annotated[str, Field(min_length=1, max_length=300)]
    input: Annotated[list[Annotated[str, Field(max_length=32_000)]], Field(min_length=1, max_length=2048)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: Annotated[str, Field(max_length=256)] | None = None
    # Tertulia's extension: e5-style models embed questions and passages differently.
    input_type: Literal["query", "passage"] = "passage"

    @field_validator("input", mode="before")
    @classmethod
    def _one_input_is_a_list(cls, value: Any) -> Any:
        return one_or_many(value)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    # Tertulia's extension: what the model is (a bot, or a provider's raw model).
    tertulia: dict[str, Any]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
