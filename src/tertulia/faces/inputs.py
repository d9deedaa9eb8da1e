"""Input rules every face shares: text that no database can store is refused at the door.

PostgreSQL cannot store U+0000 in text or JSON, and SQLite would truncate on it in places,
so a NUL anywhere in a request (path, query or JSON body) is a 400 on every backend.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from starlette.requests import HTTPConnection

from tertulia.core.errors import Invalid

NUL = "\x00"


def refuse_nul(data: Any, where: str = "value") -> Any:
    """Walks a decoded JSON value; returns it unchanged or raises ValueError (a 400 via pydantic)."""
    pending = [(where, data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                raise ValueError(f"{path} contains a NUL character")
        elif isinstance(value, dict):
            for key, item in value.items():
                if NUL in str(key):
                    raise ValueError(f"{path} has a key with a NUL character")
                pending.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return data


async def refuse_nul_in_url(request: HTTPConnection) -> None:
    """An app-wide dependency: query parameters and path parameters."""
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if NUL in name or NUL in str(value):
            raise Invalid(f"{name} contains a NUL character", {"field": name})


def clean(value: Any, field: str) -> Any:
    """`refuse_nul` outside a pydantic model: a NUL is an Invalid naming the field."""
    try:
        return refuse_nul(value, field)
    except ValueError as error:
        raise Invalid(str(error), {"field": field}) from None


class RequestModel(BaseModel):
    """A request body: unknown fields ignored, NUL characters refused in every field."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return refuse_nul(value)
