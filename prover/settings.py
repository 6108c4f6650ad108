"""The service's configuration: one object read from ``ZKINFER_*`` variables, then passed in.

Nothing below the CLI reads the environment for the service; ``zkinfer serve`` builds one
:class:`Settings` and hands it to the app factory, the store and the queue. Unsafe combinations
(no keys at all outside an explicit development mode, a key shared by a client and a provider)
are refused when the object is built, before anything listens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prover.core.hashing import sha256_text

__all__ = ["DEV_CLIENT_KEY", "DEV_PROVIDER_KEY", "Settings", "key_id"]

#: The keys development mode uses when none are configured; printed by ``zkinfer serve --dev``.
DEV_CLIENT_KEY = "dev-client-key"
DEV_PROVIDER_KEY = "dev-provider-key"


def key_id(key: str) -> str:
    """A stable, non-secret name for an API key: what the database stores as owner or provider."""
    return sha256_text(key)[:16]


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "zkinfer"


class Settings(BaseSettings):
    """Every ``ZKINFER_*`` variable the service reads (documented in docs/api.md)."""

    model_config = SettingsConfigDict(env_prefix="ZKINFER_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home, description="data directory")
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset: an embedded server under home/pg"
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="client keys, comma-separated"
    )
    provider_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="provider (worker) keys, comma-separated"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret (whsec_ + base64)"
    )
    dev: bool = Field(
        default=False, description="development mode: built-in keys, http and private webhook URLs"
    )
    dev_srs: bool = Field(
        default=False, description="compile models with a generated, UNSAFE development SRS"
    )
    reference_models: bool = Field(
        default=True, description="register and compile the models/ folder's models at start"
    )
    lease_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    max_attempts: int = Field(default=3, ge=1, le=100)
    quarantine_after: int = Field(default=3, ge=1, description="rejected proofs per provider")
    default_deadline_s: float = Field(default=3600.0, gt=0)
    max_deadline_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="JSON bodies")
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="model uploads")
    verify_timeout_s: float = Field(default=120.0, gt=0)
    submit_wait_s: float = Field(default=20.0, ge=0, description="wait for a verdict before 202")
    compile_timeout_s: float = Field(default=1800.0, gt=0)
    compile_memory_bytes: int = Field(default=8 * 1024**3, ge=256 * 1024**2)
    page_size_max: int = Field(default=100, ge=1, le=1000)

    @field_validator("api_keys", "provider_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("api_keys", "provider_keys")
    @classmethod
    def _long_enough(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for k in keys:
            if len(k.get_secret_value()) < 16:
                raise ValueError("each key must be at least 16 characters (use a random token)")
        return keys

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if not self.dev and not (self.api_keys and self.provider_keys):
            raise ValueError(
                "no API keys configured: set ZKINFER_API_KEYS and ZKINFER_PROVIDER_KEYS "
                "(comma-separated), or run in development mode (ZKINFER_DEV=1 / --dev) with "
                "the built-in development keys"
            )
        if set(self.client_keys()) & set(self.provider_key_values()):
            raise ValueError("a key is both a client key and a provider key; use distinct keys")
        if self.default_deadline_s > self.max_deadline_s:
            raise ValueError("ZKINFER_DEFAULT_DEADLINE_S exceeds ZKINFER_MAX_DEADLINE_S")
        return self

    def client_keys(self) -> list[str]:
        """Client keys in use (the development key when none is configured in dev mode)."""
        keys = [k.get_secret_value() for k in self.api_keys]
        return keys or ([DEV_CLIENT_KEY] if self.dev else [])

    def provider_key_values(self) -> list[str]:
        """Provider keys in use (the development key when none is configured in dev mode)."""
        keys = [k.get_secret_value() for k in self.provider_keys]
        return keys or ([DEV_PROVIDER_KEY] if self.dev else [])

    @property
    def service_dir(self) -> Path:
        """Where the service keeps bundles, uploads and the embedded database."""
        return self.home / "service"
