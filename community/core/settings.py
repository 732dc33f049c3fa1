"""Configuration from environment variables (one pydantic-settings class for the whole site)."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret


MODEL_SERVER_OFF = "off"


class Settings(BaseSettings):
    """Every knob the site reads. Documented in README.md ("Configuration")."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    instance_dir: Path = Field(default=Path("instance"))
    database_url: str | None = None
    meili_url: str | None = None
    meili_master_key: str | None = None
    # The key web processes search with (actions: search). Unset: the site creates one for its
    # own indexes with the master key. Web processes never search with the master key.
    meili_search_key: str | None = None
    # The key the worker and the commands that index write with (documents, settings and tasks
    # of this site's indexes only; `community search keys` makes both from the master key).
    # Unset: the master key, as in embedded mode.
    meili_write_key: str | None = None
    # Index names start with this, so several sites (or test runs) can share one server.
    meili_index_prefix: str = Field(default="community_", pattern=r"^[A-Za-z0-9_-]{0,40}$")
    # Semantic search's model for brands that do not choose one (kb.vectors): "auto" (all-MiniLM
    # for English, the multilingual USE for every language), a model name, or "off" (lexical).
    search_model: str = Field(default="auto", pattern=r"^[a-z0-9-]{1,40}$")
    # Where a web process gets query vectors and language guesses (kb/model_server.py): a Unix
    # socket's path or http://127.0.0.1:PORT. Unset: `serve --workers N` starts one model server
    # for its processes, and `community serve` (one process) loads the models itself. "off":
    # every process loads the models it needs.
    model_server: str | None = Field(default=None, max_length=500)
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    # Host names the site answers to besides BASE_URL's and the brands' own (comma-separated;
    # "*": any). Other Host headers get a 400 (community/core/hosts.py). With BASE_URL on a
    # loopback address (development) localhost and the loopback addresses are allowed too.
    allowed_hosts: str = Field(default="", max_length=4000)
    # Brands' single sign-on providers on loopback or private addresses, and over plain http
    # there (tests, a provider inside a private network). Public providers need https.
    sso_allow_private_issuers: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "json": one JSON object per line with the request id (carried into the worker's jobs).
    log_format: Literal["text", "json"] = "text"
    # /metrics (Prometheus) answers requests bearing this token; unset: loopback clients only.
    metrics_token: str | None = None
    # Pages are served from a cache for at most this long (0: no cache): logged-out visitors'
    # and plain members' (community/core/page_cache.py, member_pages.py). Every write drops them
    # at once, and so does the worker's promotion of a thread to the KB (with REDIS_URL); this
    # bounds what changes otherwise (view counts, "2 minutes ago"). Pages that read the search
    # index are kept 5 s at most (they change when the worker has indexed).
    page_cache_seconds: float = Field(default=30.0, ge=0, le=60)
    redis_url: str | None = None
    # Proxies whose X-Forwarded-For we believe; empty means the socket peer is the client.
    trusted_proxies: str = ""
    default_brand: str | None = None
    default_locale: Literal["en", "es"] = "en"
    session_max_age_days: int = Field(default=30, ge=1, le=365)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Failed logins per account from one address, per address, and per account from every
    # address (which only slows guessing down; see throttle.LoginThrottle).
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_ip: int = Field(default=30, ge=1)
    login_failures_account_wide: int = Field(default=100, ge=1)
    login_throttle_minutes: int = Field(default=15, ge=1)
    # Argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8192)
    argon2_parallelism: int = Field(default=4, ge=1)
    # The API reference page (/docs): unset means on for http (development), off for https.
    expose_api_docs: bool | None = None
    # Outgoing e-mail: smtp://user:password@host:587?starttls=true or smtps://host:465.
    smtp_url: str | None = None
    mail_from: str = "Community <no-reply@community.invalid>"
    # Run the background worker inside `community serve` (embedded mode).
    embedded_worker: bool = True
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    view_flush_seconds: float = Field(default=5.0, gt=0)
    # Requests served at once per process; more wait in line (see community/core/admission.py), and
    # one that waits longer than request_queue_seconds, or finds request_queue_limit already
    # waiting, gets a 503 with Retry-After. The database pool is sized from the first. A process
    # runs one request's Python at a time: two overlap one's database wait with the other's
    # work, and more only contend for the interpreter (docs/performance.md, "The eighth run":
    # 2 served 16-30% more signed-in pages a second than 16, and new answers at a lower p99).
    max_concurrent_requests: int = Field(default=2, ge=1, le=32)
    request_queue_seconds: float = Field(default=20.0, gt=0, le=120)
    request_queue_limit: int = Field(default=1000, ge=0)
    rate_limits_enabled: bool = True
    # A template that queries the database (a lazy relationship: an N+1) raises instead of
    # logging a warning; on in the tests, off in production where it would be a 500.
    strict_queries: bool = False
    # Rate-limit counters in Redis start with this (several sites or test runs can share one).
    rate_limit_prefix: str = Field(default="community", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    # Uploaded images (community/core/uploads.py): at most this many bytes as sent and this many
    # pixels as declared (a decompression bomb is refused from its header, never decoded). Kept
    # in UPLOADS_DIR (default INSTANCE_DIR/uploads), or in an S3-compatible bucket when
    # UPLOADS_S3_ENDPOINT (host[:port]) and UPLOADS_S3_BUCKET are set; the site always serves
    # them itself, so the bucket stays private and its keys never reach a browser.
    uploads_dir: Path | None = None
    uploads_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    uploads_max_pixels: int = Field(default=40_000_000, ge=10_000, le=80_000_000)
    uploads_s3_endpoint: str | None = Field(default=None, max_length=300)
    uploads_s3_bucket: str | None = Field(default=None, max_length=63)
    uploads_s3_access_key: str | None = None
    uploads_s3_secret_key: SecretStr | None = None  # SecretStr: never printed in a log or repr
    uploads_s3_secure: bool = True
    uploads_s3_region: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @cached_property
    def instance_path(self) -> Path:
        path = self.instance_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver spelled out for PostgreSQL."""
        url = self.database_url or f"sqlite:///{self.instance_path / 'community.core.db'}"
        return normalise_database_url(url)

    @cached_property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        return load_or_create_secret(self.instance_path / SECRET_KEY_FILE)

    @property
    def uploads_path(self) -> Path:
        """Where uploaded images are kept on disk (when no bucket is configured)."""
        return (self.uploads_dir or self.instance_path / "uploads").expanduser().resolve()

    @property
    def uploads_in_s3(self) -> bool:
        return bool(self.uploads_s3_endpoint and self.uploads_s3_bucket)

    @property
    def uses_managed_meili(self) -> bool:
        return not self.meili_url

    @property
    def model_server_address(self) -> str | None:
        """The model server this process asks, or None: it loads the models itself."""
        if not self.model_server or self.model_server == MODEL_SERVER_OFF:
            return None
        return self.model_server

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def api_docs_enabled(self) -> bool:
        return self.expose_api_docs if self.expose_api_docs is not None else not self.cookie_secure

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]


def normalise_database_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_or_create_secret(path: Path) -> str:
    """Read a generated secret, creating it (readable by the owner only) on first use."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our check and our write.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
