"""zkinfer's configuration: every ``ZKINFER_*`` variable, read once per process into one object.

Nothing else in the package reads the environment for ``ZKINFER_*`` variables: the core, the
chain layer, the worker and the CLI call :func:`get_settings` (built on first use, then cached);
the service is handed a :class:`Settings` by ``zkinfer serve`` (or by a test) and takes
everything from it. A malformed value is a :class:`~prover.errors.UsageError` (exit 2) naming the
variable and what it should hold. docs/configuration.md lists every variable.

Durable state (deployments records, worker cursors, the devnet's chain, the service's database and
bundles) lives in the data directory ``home``; what can be rebuilt or downloaded again (SRS files,
the worker's bundle downloads and proof folders) lives in ``cache_dir``.

The service's safety rules (API keys required outside development mode, distinct client and
provider keys, ...) are :meth:`Settings.check_for_serving`, applied by ``zkinfer serve`` and the
app factory only, so that a command that does not serve is never refused over them.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from prover.core.hashing import sha256_text
from prover.errors import UsageError

__all__ = [
    "DEV_CLIENT_KEY",
    "DEV_PROVIDER_KEY",
    "ENV_PREFIX",
    "Settings",
    "env_name",
    "get_settings",
    "key_id",
]

ENV_PREFIX = "ZKINFER_"

#: The keys development mode uses when none are configured; printed by ``zkinfer serve --dev``.
DEV_CLIENT_KEY = "dev-client-key"
DEV_PROVIDER_KEY = "dev-provider-key"

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MIN_EZKL_MEMORY = 64 << 20
_MIN_KEY_LENGTH = 16


def key_id(key: str) -> str:
    """A stable, non-secret name for an API key: what the database stores as owner or provider."""
    return sha256_text(key)[:16]


def env_name(field: str) -> str:
    """The variable that sets a settings field (``chain_id`` -> ``ZKINFER_CHAIN_ID``)."""
    return ENV_PREFIX + field.upper()


def _xdg(variable: str, fallback: str) -> Path:
    # the XDG base directory spec: a relative value is invalid and is ignored
    value = os.environ.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / "zkinfer"


def _default_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share")


def _default_cache() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


def _physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Settings(BaseSettings):
    """Every ``ZKINFER_*`` variable zkinfer reads (the table in docs/configuration.md)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    # directories and tools
    home: Path = Field(
        default_factory=_default_home,
        description="data directory for durable state: deployments records, worker cursors, the "
        "devnet's chain, the service's database and bundles ($XDG_DATA_HOME/zkinfer or "
        "~/.local/share/zkinfer)",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="cache for what can be rebuilt or downloaded again: SRS files, the worker's "
        "bundle downloads and proof folders ($XDG_CACHE_HOME/zkinfer or ~/.cache/zkinfer)",
    )
    solc_js: Path | None = Field(
        default=None, description="the solc-js wrapper script (default: the checkout's copy)"
    )
    anvil: Path | None = Field(
        default=None, description="the anvil binary (default: the checkout's npm copy, or PATH)"
    )
    # limits on what a hostile model can make ezkl do. A circuit spends at least one row per tensor
    # element and ezkl's largest circuits have 2^26 rows: a tensor far past 2^24 cannot be proven.
    max_tensor_elements: int = Field(
        default=1 << 24, ge=1, description="largest number of elements of any one tensor"
    )
    ezkl_memory_limit: int | None = Field(
        default_factory=_physical_memory,
        description="address-space limit of the process running ezkl's heavy steps: a size "
        "(8G, 512M, bytes) or none (default: the machine's physical memory)",
    )
    # chain
    rpc_url: str | None = Field(
        default=None, description="Ethereum JSON-RPC URL (--rpc-url; default: the local devnet)"
    )
    chain_id: int | None = Field(
        default=None,
        ge=1,
        description="the only chain id the on-chain commands accept (--chain-id); the chain whose "
        "deployments the service shows",
    )
    private_key: SecretStr | None = Field(
        default=None, description="the signing key, 32-byte hex (or --keystore)"
    )
    keystore_password: SecretStr | None = Field(
        default=None, description="the password of the --keystore file"
    )
    # HTTP prover
    provider_key: SecretStr | None = Field(
        default=None, description="the key `zkinfer worker --api` presents to the service"
    )
    debug: bool = Field(default=False, description="show tracebacks of internal errors")
    # the service (`zkinfer serve`)
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset: an embedded server under home/service/pg"
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
    lease_ttl_s: float = Field(
        default=60.0, gt=0, le=3600, description="a lease lasts this long unless renewed"
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="leases per request before it fails"
    )
    batch_wait_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="how long the oldest queued request of a batch model waits for a full batch",
    )
    max_queued_per_client: int | None = Field(
        default=1000,
        ge=1,
        description="most open requests (queued, proving or verifying, deadline not passed) one "
        "client key may have; more get 429 (0 or none: no limit)",
    )
    quarantine_after: int = Field(
        default=3, ge=1, description="rejected proofs after which a provider may not lease work"
    )
    default_deadline_s: float = Field(
        default=3600.0, gt=0, description="a request's deadline when it names none"
    )
    max_deadline_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="the longest deadline accepted"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="JSON bodies larger than this get 413"
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="model uploads larger than this get 413"
    )
    verify_timeout_s: float = Field(
        default=120.0, gt=0, description="time limit of one proof verification"
    )
    verify_memory_bytes: int = Field(
        default=4 * 1024**3,
        ge=256 * 1024**2,
        description="memory limit (RLIMIT_DATA) of each verifier child process",
    )
    submit_wait_s: float = Field(
        default=20.0, ge=0, description="how long a proof submission waits for the verdict"
    )
    compile_timeout_s: float = Field(
        default=1800.0, gt=0, description="compile time limit for an uploaded model"
    )
    compile_memory_bytes: int = Field(
        default=8 * 1024**3, ge=256 * 1024**2, description="memory limit of a model compile"
    )
    page_size_max: int = Field(
        default=100, ge=1, le=1000, description="largest page of GET /v1/inferences"
    )

    @field_validator("api_keys", "provider_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("max_queued_per_client", mode="before")
    @classmethod
    def _no_limit(cls, value: object) -> object:
        if value == 0 or (isinstance(value, str) and value.strip().lower() in ("0", "none")):
            return None
        return value

    @field_validator("ezkl_memory_limit", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        raw = value.strip().upper().removesuffix("B").removesuffix("I")
        if raw in ("NONE", "0"):
            return None
        unit = raw[-1] if raw and raw[-1] in _SIZE_UNITS else ""
        try:
            size = int(float(raw.removesuffix(unit)) * _SIZE_UNITS[unit])
        except ValueError:
            raise ValueError("use a size such as 8G or 512M, or none") from None
        if size < _MIN_EZKL_MEMORY:
            raise ValueError("at least 64M is needed")
        return size

    def check_for_serving(self) -> None:
        """Refuse configurations unsafe for ``zkinfer serve`` (:class:`UsageError`, exit 2)."""
        if not self.dev and not (self.api_keys and self.provider_keys):
            raise UsageError(
                "no API keys configured: set ZKINFER_API_KEYS and ZKINFER_PROVIDER_KEYS "
                "(comma-separated), or run in development mode (ZKINFER_DEV=1 / --dev) with "
                "the built-in development keys"
            )
        for name in ("api_keys", "provider_keys"):
            keys: list[SecretStr] = getattr(self, name)
            if any(len(k.get_secret_value()) < _MIN_KEY_LENGTH for k in keys):
                raise UsageError(
                    f"{env_name(name)}: each key must be at least {_MIN_KEY_LENGTH} characters "
                    "(use a random token: openssl rand -hex 24)"
                )
        if set(self.client_keys()) & set(self.provider_key_values()):
            raise UsageError(
                "a key is both a client key and a provider key: use distinct keys in "
                "ZKINFER_API_KEYS and ZKINFER_PROVIDER_KEYS"
            )
        if self.default_deadline_s > self.max_deadline_s:
            raise UsageError("ZKINFER_DEFAULT_DEADLINE_S exceeds ZKINFER_MAX_DEADLINE_S")

    def client_keys(self) -> list[str]:
        """Client keys in use (the development key when none is configured in dev mode)."""
        keys = [k.get_secret_value() for k in self.api_keys]
        return keys or ([DEV_CLIENT_KEY] if self.dev else [])

    def provider_key_values(self) -> list[str]:
        """Provider keys in use (the development key when none is configured in dev mode)."""
        keys = [k.get_secret_value() for k in self.provider_keys]
        return keys or ([DEV_PROVIDER_KEY] if self.dev else [])

    # Where things live: the one place that spells the layout of both directories.

    @property
    def service_dir(self) -> Path:
        """Where the service keeps bundles, uploads and the embedded database."""
        return self.home / "service"

    def deployments_file(self, chain_id: int) -> Path:
        """The record of what zkinfer deployed on chain ``chain_id`` (market, verifiers)."""
        return self.home / "deployments" / f"{chain_id}.json"

    @property
    def devnet_dir(self) -> Path:
        """The local devnet's chain state, pid, port and log."""
        return self.home / "devnet"

    @property
    def worker_state_dir(self) -> Path:
        """The on-chain worker's cursors (one file per chain and market)."""
        return self.home / "worker"

    @property
    def srs_dir(self) -> Path:
        """Cached SRS files, one folder per provenance."""
        return self.cache_dir / "srs"

    @property
    def worker_cache_dir(self) -> Path:
        """The workers' bundle downloads (``bundles/``) and proof folders."""
        return self.cache_dir / "worker"


_SECRET_FIELDS = frozenset(
    name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
)


def _problem(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if field not in Settings.model_fields:
        return message
    shown = "" if field in _SECRET_FIELDS else f"={error['input']!r}"
    expected = Settings.model_fields[field].description or ""
    name = env_name(field)
    return (
        f"{name}{shown}: {message} ({name}: {expected}); correct it or unset it "
        "(docs/configuration.md lists every variable)"
    )


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use.

    Raises :class:`UsageError` naming each malformed variable and what it should hold.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise UsageError("; ".join(_problem(e) for e in exc.errors())) from None
    except SettingsError as exc:
        raise UsageError(f"{exc} (docs/configuration.md lists every variable)") from None
