"""The one Settings object, read from TERTULIA_* environment variables once at start."""

import os
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{Path.cwd() / 'tertulia.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERTULIA_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    # None means: generate one on first start and keep it in the database, so every
    # process of a deployment signs with the same key and no default secret exists.
    secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=3600, ge=60)
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Office files are zips: the most their contents may unpack to (zip bombs stop here).
    max_unpacked_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    # Documents added by URL: private, loopback and link-local addresses are refused unless
    # this is on (a server that indexes its own intranet).
    allow_private_urls: bool = False
    fetch_timeout_seconds: float = Field(default=20.0, gt=0)
    # Ingestion jobs the in-process runner runs at once. Two let one document be parsed or
    # stored while another is embedded, and overlap the waits of a remote embedder; with the
    # local one the CPU is the limit either way (bench/retrieval.py: 5.2 chunks/s with one or
    # two, 83 % of the bare embedder, whose speed does not depend on its batch size).
    ingest_concurrency: int = Field(default=2, ge=1, le=16)
    # Who runs background jobs: "inline" (the API process itself) or "celery" (`tertulia
    # worker` processes, given each job through the Redis broker at celery_broker_url).
    jobs: Literal["inline", "celery"] = "inline"
    celery_broker_url: str | None = None
    # The broker queue the API sends jobs to and `tertulia worker` takes them from: deployments
    # (or tests) sharing one Redis keep their jobs apart by giving each its own.
    celery_queue: str = Field(default="tertulia", min_length=1)
    # A task a worker took but never acknowledged (the worker died) is delivered again after
    # this; it may be short, since the job's lease, not the broker, keeps runners apart.
    celery_visibility_timeout_seconds: int = Field(default=120, ge=1)
    # A worker renews the lease of the job it runs every third of this; once a lease runs out
    # (its worker died) another worker takes the job over.
    job_lease_seconds: float = Field(default=60.0, gt=0)
    # The longest one job may run on a worker before it is stopped and marked failed.
    job_time_limit_seconds: int = Field(default=3600, ge=1)
    # Requests per account, by plan (ChatAgent: 100 / 1000 / 10000 a minute).
    rate_limit_plans: dict[str, str] = Field(
        default_factory=lambda: {
            "standard": "100/minute",
            "premium": "1000/minute",
            "enterprise": "10000/minute",
        }
    )
    default_plan: str = "standard"
    # Sign-up and login are limited per client address, before anyone is known.
    anonymous_rate_limit: str = "30/minute"
    # Each web widget visitor, on top of the account's plan (docs/web-channel.md).
    widget_visitor_rate_limit: str = "20/minute;300/hour"
    # How long a widget visitor keeps its conversation (its token's lifetime) on one browser.
    widget_visitor_days: int = Field(default=90, ge=1, le=3650)
    rate_limit_storage: str = "memory://"
    # Several API processes share Redis (needs tertulia[scale]): rate limits are counted
    # there, whatever rate_limit_storage says, and conversation events reach every
    # process's WebSockets through it. None: in-process memory, for one process.
    redis_url: str | None = None
    # Longest wait for Redis before a request needing it is refused with a 503.
    redis_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    # How long a question's vector is kept for the same question asked again (in Redis when
    # redis_url is set, else the `query_cache_size` most recent in each process); 0: off.
    query_cache_seconds: float = Field(default=600, ge=0)
    query_cache_size: int = Field(default=4096, ge=1)
    # The weather tool's Open-Meteo APIs (a commercial customer's, or a mirror, instead).
    weather_forecast_url: str = "https://api.open-meteo.com"
    weather_geocoding_url: str = "https://geocoding-api.open-meteo.com"
    # Longest wait for a tool's remote service (the weather tool's) before it is told it failed.
    tool_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The chat model a bot uses when neither it nor its account chose one.
    default_chat_provider: str = "local"
    default_chat_model: str = "qwen2.5-coder-0.5b-instruct"
    # Where packaged local models are assembled into single files (once per machine).
    model_cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "tertulia" / "models")
    llm_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    llm_context_tokens: int = Field(default=4096, ge=512)
    websocket_heartbeat_seconds: float = Field(default=30.0, gt=0)
    # Tokens (prompt + reply) an account may spend per rolling 24 hours, by plan; None: no cap.
    token_quota_plans: dict[str, int | None] = Field(
        default_factory=lambda: {"standard": 2_000_000, "premium": 20_000_000, "enterprise": None}
    )
    # Remote model providers: the server's own keys, used when neither the bot nor its
    # account stored one. Accounts may also store their own (sealed at rest).
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_compatible_api_key: SecretStr | None = None
    openai_compatible_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    google_api_key: SecretStr | None = None
    google_base_url: str = "https://generativelanguage.googleapis.com"
    provider_timeout_seconds: float = Field(default=60.0, gt=0)
    provider_context_tokens: int = Field(default=32_768, ge=512)
    # The default embedder (multilingual-e5-small, packaged) for knowledge and /v1/embeddings.
    default_embedding_provider: str = "local"
    default_embedding_model: str = "multilingual-e5-small"
    # A cross-encoder exported to ONNX (a folder with model.onnx and tokenizer.json) that
    # reranks what a bot's retrieval found; offered as the local rerank model under its
    # folder's name (or rerank_model_name), and every bot's default once set.
    rerank_model_path: Path | None = None
    rerank_model_name: str | None = None
    # Knowledge bases with vector_store_type "chroma" (needs tertulia[chroma]): a Chroma
    # server at this URL, or else a persistent local Chroma folder (None: "chroma" beside
    # the SQLite file, or ./tertulia-chroma with PostgreSQL).
    chroma_url: str | None = None
    chroma_token: SecretStr | None = None
    chroma_path: Path | None = None
    chroma_timeout_seconds: float = Field(default=30.0, gt=0)
    # Log lines: "json" (one object a line, for log shippers), "plain" (for reading), or
    # "auto": plain on a terminal, JSON anywhere else (a container, systemd, a file).
    log_format: Literal["auto", "json", "plain"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # GET /metrics in Prometheus' format; with metrics_token set it asks for that Bearer token.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    # Request records and account logs (GET /api/v1/monitoring/...): written from memory this
    # often, in batches, and kept this many days.
    monitoring_flush_seconds: float = Field(default=2.0, gt=0, le=300)
    monitoring_retention_days: float = Field(default=14, gt=0)

    # Multimodal processing (ChatAgent /multimodal; needs tertulia[media] and, for OCR, audio
    # and video, Debian's tesseract-ocr and ffmpeg). A file may weigh max_upload_bytes; these
    # bound what it may unpack to, so a small file cannot make the server decode a huge one.
    media_max_pixels: int = Field(default=40_000_000, ge=1)  # an image's width × height
    media_max_duration_seconds: float = Field(default=600.0, gt=0)  # audio and video
    media_max_pages: int = Field(default=300, ge=1)  # PDF pages
    media_max_frames: int = Field(default=10, ge=1, le=100)  # key frames taken from a video
    # Files and processing steps run at once (each takes a CPU core while it runs).
    media_concurrency: int = Field(default=2, ge=1, le=32)
    # Tesseract languages read by OCR unless a request names others (those installed only).
    ocr_languages: list[str] = Field(default_factory=lambda: ["spa", "chi_sim", "eng"])
    # How long files made by processing (resized images, thumbnails, video frames) can be
    # downloaded before they are removed.
    media_file_retention_seconds: int = Field(default=24 * 3600, ge=60)
    media_batch_max_files: int = Field(default=20, ge=1, le=500)
    # /multimodal/batch-process waits this long for its job, then answers 202 with the job.
    media_batch_wait_seconds: float = Field(default=30.0, ge=0)
    # Speech to text: an OpenAI-compatible /audio/transcriptions server (base URL ending in
    # /v1), else the packaged Whisper base model run locally (faster-whisper), else none.
    transcription_base_url: str | None = None
    transcription_api_key: SecretStr | None = None
    transcription_model: str = "whisper-1"
    # Off: the packaged Whisper model is not used even when installed (it takes ~340 MB of RAM).
    local_transcription: bool = True
    transcription_threads: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 4), ge=1)

    @field_validator("secret_key")
    @classmethod
    def _secret_is_strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("TERTULIA_SECRET_KEY must be at least 32 characters")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit_plans")
    @classmethod
    def _plans_parse(cls, plans: dict[str, str]) -> dict[str, str]:
        for rule in plans.values():
            parse_many(rule)  # raises ValueError on a malformed rule
        return plans

    @field_validator("anonymous_rate_limit", "widget_visitor_rate_limit")
    @classmethod
    def _anonymous_rule_parses(cls, rule: str) -> str:
        parse_many(rule)
        return rule

    @model_validator(mode="after")
    def _celery_has_a_broker(self) -> "Settings":
        if self.jobs == "celery" and not self.celery_broker_url:
            raise ValueError("TERTULIA_JOBS=celery needs TERTULIA_CELERY_BROKER_URL (redis://host:6379/0)")
        return self

    @model_validator(mode="after")
    def _default_plan_exists(self) -> "Settings":
        if self.default_plan not in self.rate_limit_plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of rate_limit_plans")
        return self

    def chroma_folder(self) -> Path:
        if self.chroma_path is not None:
            return self.chroma_path
        if (folder := self._sqlite_folder()) is not None:
            return folder / "chroma"
        return Path.cwd() / "tertulia-chroma"

    def data_folder(self) -> Path:
        """The folder whose disk holds this machine's data (the disk use monitoring reports):
        the SQLite file's, else the working folder."""
        return self._sqlite_folder() or Path.cwd()

    def _sqlite_folder(self) -> Path | None:
        if self.database_url.startswith("sqlite") and ":///" in self.database_url:
            database_file = Path(self.database_url.split(":///", 1)[1])
            if database_file.name and database_file.name != ":memory:":
                return database_file.parent
        return None

    def token_quota(self, plan: str) -> int | None:
        """A plan's daily token cap; a plan the table does not name falls back to the default's."""
        return self.token_quota_plans.get(plan, self.token_quota_plans.get(self.default_plan))

    def provider_secret(self, provider: str) -> str | None:
        value = {
            "openai": self.openai_api_key,
            "openai-compatible": self.openai_compatible_api_key,
            "anthropic": self.anthropic_api_key,
            "google": self.google_api_key,
        }.get(provider)
        return value.get_secret_value() if value is not None else None

    def provider_base_url(self, provider: str) -> str | None:
        return {
            "openai": self.openai_base_url,
            "openai-compatible": self.openai_compatible_base_url,
            "anthropic": self.anthropic_base_url,
            "google": self.google_base_url,
        }.get(provider)
