"""Bytchat's request and response bodies (bytchat-api.txt), field for field."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from tertulia.faces.inputs import RequestModel

Name = Annotated[str, Field(min_length=1, max_length=128)]
Text = Annotated[str, Field(max_length=20_000)]
Identifier = Annotated[str, Field(min_length=1, max_length=64)]
ModelName = Annotated[str, Field(min_length=1, max_length=256)]


class Welcome(BaseModel):
    message: str
    version: str


class UserCreate(RequestModel):
    email: EmailStr
    password: Annotated[str, Field(min_length=8, max_length=256)]


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    is_active: bool = True


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ModelConfig(RequestModel):
    """One entry of a bot's toolbox: which model serves a task type."""

    task_type: Identifier
    provider: Identifier
    model_id: ModelName


class ModelConfigPublic(BaseModel):
    id: str
    bot_id: str
    task_type: str
    provider: str
    model_id: str


class BotCreate(RequestModel):
    name: Name
    description: Text = ""
    system_prompt: Text = ""
    initial_configs: Annotated[list[ModelConfig], Field(max_length=20)] = []


class BotUpdate(RequestModel):
    name: Name | None = None
    description: Text | None = None
    system_prompt: Text | None = None


class BotPublic(BaseModel):
    id: str
    owner_id: str
    name: str
    description: str
    system_prompt: str
    models: list[ModelConfigPublic]
    created_at: datetime


class Training(BaseModel):
    message: str
    bot_id: str
    filename: str
    job_id: str
    status: str
