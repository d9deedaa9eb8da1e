"""The ChatAgent API (chatagent-api.md) as resources: each method builds one Call and hands
it to the client, which answers with the server's JSON (ChatAgentClient) or a coroutine
of it (AsyncChatAgentClient). Paths and bodies are the document's."""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from chatagent.calls import Call, FileInput, body, file_part, form, query

# The server's JSON for ChatAgentClient; an awaitable of it for AsyncChatAgentClient.
Result = TypeVar("Result")


def _segment(value: str) -> str:
    """An id inside a path, so that no id can reach another route."""
    return quote(str(value), safe="")


class Resource(Generic[Result]):
    def __init__(self, send: Callable[[Call], Result]) -> None:
        self._send = send


class Auth(Resource[Result]):
    """Sign-up, login and the current user. Register and login make the client use the access
    token they return, so `client.auth.login(...)` is all it takes to sign a client in."""

    def register(self, user: Mapping[str, Any] | None = None, **fields: Any) -> Result:
        """`{"username", "email", "password", "nickname"?}`."""
        return self._send(
            Call("POST", "/auth/register", json=body(user, fields), authenticated=False, keeps_token=True)
        )

    def login(self, username: str, password: str) -> Result:
        return self._send(
            Call(
                "POST",
                "/auth/login",
                json={"username": username, "password": password},
                authenticated=False,
                keeps_token=True,
            )
        )

    def me(self) -> Result:
        return self._send(Call("GET", "/auth/me"))

    # Tertulia's additions: API keys, which a client can use in place of an access token.

    def create_api_key(
        self,
        name: str = "default",
        *,
        scopes: list[str] | None = None,
        bot_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> Result:
        """The reply's `key` is the secret, shown only this once."""
        sent = query(name=name, scopes=scopes, bot_id=bot_id, expires_at=expires_at)
        return self._send(Call("POST", "/auth/api-keys", json=sent))

    def list_api_keys(self) -> Result:
        return self._send(Call("GET", "/auth/api-keys"))

    def revoke_api_key(self, key_id: str) -> Result:
        return self._send(Call("DELETE", f"/auth/api-keys/{_segment(key_id)}"))


class Bots(Resource[Result]):
    def create(self, bot: Mapping[str, Any] | None = None, **fields: Any) -> Result:
        """`{"name", "description"?, "platform_type"?, "llm_config"?: {provider, model, temperature,
        max_tokens, system_prompt …}, "knowledge_base_ids"?, "plugins"?}`."""
        return self._send(Call("POST", "/bots/", json=body(bot, fields)))

    def list(
        self,
        *,
        limit: int = 20,
        offset: int = 0,
        search: str | None = None,
        platform_type: str | None = None,
        is_active: bool | None = None,
    ) -> Result:
        params = query(
            limit=limit, offset=offset, search=search, platform_type=platform_type, is_active=is_active
        )
        return self._send(Call("GET", "/bots/", params=params))

    def get(self, bot_id: str) -> Result:
        return self._send(Call("GET", f"/bots/{_segment(bot_id)}"))

    def update(self, bot_id: str, changes: Mapping[str, Any] | None = None, **fields: Any) -> Result:
        """Only the fields given change."""
        return self._send(Call("PUT", f"/bots/{_segment(bot_id)}", json=body(changes, fields)))

    def delete(self, bot_id: str) -> Result:
        return self._send(Call("DELETE", f"/bots/{_segment(bot_id)}"))

    def start(self, bot_id: str) -> Result:
        return self._send(Call("POST", f"/bots/{_segment(bot_id)}/start"))

    def stop(self, bot_id: str) -> Result:
        return self._send(Call("POST", f"/bots/{_segment(bot_id)}/stop"))

    def status(self, bot_id: str) -> Result:
        return self._send(Call("GET", f"/bots/{_segment(bot_id)}/status"))


class Conversations(Resource[Result]):
    """Conversations and their messages. `send_message` and `stream_message` are each
    client's own (REST for the whole reply, the WebSocket for its pieces)."""

    def create(self, conversation: Mapping[str, Any] | None = None, **fields: Any) -> Result:
        """`{"bot_id", "title"?, "platform"?, "platform_chat_id"?, "context"?}`."""
        return self._send(Call("POST", "/conversations/", json=body(conversation, fields)))

    def list(
        self,
        *,
        limit: int = 20,
        offset: int = 0,
        bot_id: str | None = None,
        status: Literal["active", "resolved", "unresolved"] | None = None,
    ) -> Result:
        params = query(limit=limit, offset=offset, bot_id=bot_id, status=status)
        return self._send(Call("GET", "/conversations/", params=params))

    def get(self, conversation_id: str) -> Result:
        return self._send(Call("GET", f"/conversations/{_segment(conversation_id)}"))

    def delete(self, conversation_id: str) -> Result:
        return self._send(Call("DELETE", f"/conversations/{_segment(conversation_id)}"))

    def list_messages(self, conversation_id: str, *, limit: int = 50, offset: int = 0) -> Result:
        """The conversation's history, oldest first."""
        return self._send(
            Call(
                "GET",
                f"/conversations/{_segment(conversation_id)}/messages",
                params=query(limit=limit, offset=offset),
            )
        )

    def _post_message(
        self, conversation_id: str, content: str, message_type: str, metadata: Mapping[str, Any] | None
    ) -> Result:
        sent = {"content": content, "message_type": message_type, "metadata": dict(metadata or {})}
        return self._send(Call("POST", f"/conversations/{_segment(conversation_id)}/messages", json=sent))


class KnowledgeBases(Resource[Result]):
    """Knowledge bases, their documents (ingested in the background: each upload's reply names
    its job), and search. `wait_for_job` is each client's own."""

    def create(self, base: Mapping[str, Any] | None = None, **fields: Any) -> Result:
        """`{"name", "description"?, "vector_store_type"?, "embedding_model"?, "chunk_size"?,
        "chunk_overlap"?, "metadata"?}`."""
        return self._send(Call("POST", "/knowledge/bases", json=body(base, fields)))

    def list(self, *, limit: int = 20, offset: int = 0) -> Result:
        return self._send(Call("GET", "/knowledge/bases", params=query(limit=limit, offset=offset)))

    def get(self, base_id: str) -> Result:
        return self._send(Call("GET", f"/knowledge/bases/{_segment(base_id)}"))

    def delete(self, base_id: str) -> Result:
        return self._send(Call("DELETE", f"/knowledge/bases/{_segment(base_id)}"))

    def add_document(
        self, base_id: str, file: FileInput, *, metadata: Mapping[str, Any] | None = None
    ) -> Result:
        """Uploads a file (text, Markdown, HTML, PDF, DOCX, XLSX, CSV, JSON …) as the document's
        multipart `file`, with its `metadata` kept with every chunk."""
        return self._send(
            Call(
                "POST",
                f"/knowledge/bases/{_segment(base_id)}/documents",
                data=form(metadata=metadata),
                files=[("file", file_part(file))],
            )
        )

    def add_text(
        self, base_id: str, name: str, content: str, *, metadata: Mapping[str, Any] | None = None
    ) -> Result:
        """A document given as text (Tertulia's `/documents/text`)."""
        sent = {"name": name, "content": content, "metadata": dict(metadata or {})}
        return self._send(Call("POST", f"/knowledge/bases/{_segment(base_id)}/documents/text", json=sent))

    def list_documents(self, base_id: str, *, limit: int = 20, offset: int = 0) -> Result:
        return self._send(
            Call(
                "GET",
                f"/knowledge/bases/{_segment(base_id)}/documents",
                params=query(limit=limit, offset=offset),
            )
        )

    def get_document(self, base_id: str, document_id: str) -> Result:
        return self._send(
            Call("GET", f"/knowledge/bases/{_segment(base_id)}/documents/{_segment(document_id)}")
        )

    def delete_document(self, base_id: str, document_id: str) -> Result:
        return self._send(
            Call("DELETE", f"/knowledge/bases/{_segment(base_id)}/documents/{_segment(document_id)}")
        )

    def search(
        self,
        base_id: str,
        query: str,
        *,
        top_k: int = 5,
        score_threshold: float | None = None,
        filters: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        """The chunks closest to `query`. `options` passes the server's own search options
        (Tertulia: `mode`, `fusion`, `rerank`)."""
        sent = {"query": query, "top_k": top_k, "filters": dict(filters or {}), **options}
        if score_threshold is not None:
            sent["score_threshold"] = score_threshold
        return self._send(Call("POST", f"/knowledge/bases/{_segment(base_id)}/search", json=sent))

    def get_job(self, job_id: str) -> Result:
        """An ingestion job: `status` queued, running, done or failed, with `progress` and `error`."""
        return self._send(Call("GET", f"/jobs/{_segment(job_id)}"))


class Multimodal(Resource[Result]):
    """Files turned into text and metadata: images, audio, video, documents."""

    def process(self, file: FileInput, *, options: Mapping[str, Any] | None = None) -> Result:
        """`options`: {"extract_text", "extract_images", "transcribe", "detect_faces", "resize",
        "compress"} as the document lists them."""
        return self._send(
            Call("POST", "/multimodal/process", data=form(options=options), files=[("file", file_part(file))])
        )

    def batch_process(
        self, files: Iterable[FileInput], *, options: Mapping[str, Any] | None = None
    ) -> Result:
        parts = [("files", file_part(file, f"upload-{number}")) for number, file in enumerate(files, 1)]
        return self._send(Call("POST", "/multimodal/batch-process", data=form(options=options), files=parts))

    def formats(self) -> Result:
        return self._send(Call("GET", "/multimodal/formats"))


class Plugins(Resource[Result]):
    def available(self) -> Result:
        return self._send(Call("GET", "/plugins/available"))

    def install(
        self, bot_id: str, plugin_id: str, *, config: Mapping[str, Any] | None = None, enabled: bool = True
    ) -> Result:
        """Installs a plugin on a bot, with its configuration (its `config_schema` says what)."""
        sent = {"config": dict(config or {}), "enabled": enabled}
        return self._send(Call("POST", f"/bots/{_segment(bot_id)}/plugins/{_segment(plugin_id)}", json=sent))

    def list(self, bot_id: str) -> Result:
        """The bot's plugins, on and off, with their settings (keys masked)."""
        return self._send(Call("GET", f"/bots/{_segment(bot_id)}/plugins"))

    def uninstall(self, bot_id: str, plugin_id: str) -> Result:
        return self._send(Call("DELETE", f"/bots/{_segment(bot_id)}/plugins/{_segment(plugin_id)}"))


class Monitoring(Resource[Result]):
    def metrics(self) -> Result:
        return self._send(Call("GET", "/monitoring/metrics"))

    def logs(
        self, *, level: str | None = None, start_time: datetime | str | None = None, limit: int = 100
    ) -> Result:
        params = query(level=level, start_time=start_time, limit=limit)
        return self._send(Call("GET", "/monitoring/logs", params=params))
