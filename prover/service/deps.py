"""What route handlers receive: the settings, the store, the queue and the authenticated caller,
as typed dependencies that tests can override."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from prover.service.leases import is_quarantined
from prover.service.problems import ApiProblem
from prover.service.store import Store
from prover.service.tasks import Queue
from prover.service.verifier import Verifier
from prover.settings import Settings, key_id

__all__ = [
    "ClientDep",
    "Principal",
    "ProviderDep",
    "QueueDep",
    "SettingsDep",
    "StoreDep",
    "VerifierDep",
    "authenticate",
]


@dataclass(frozen=True)
class Principal:
    """The caller: a client or a provider, named by a digest of its key (never the key)."""

    kind: Literal["client", "provider"]
    id: str


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_queue(request: Request) -> Queue:
    queue: Queue = request.app.state.queue
    return queue


def get_verifier(request: Request) -> Verifier:
    verifier: Verifier = request.app.state.verifier
    return verifier


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
QueueDep = Annotated[Queue, Depends(get_queue)]
VerifierDep = Annotated[Verifier, Depends(get_verifier)]

_bearer = HTTPBearer(auto_error=False, description="a client or provider API key")


def authenticate(settings: Settings, key: str) -> Principal | None:
    """The principal a key belongs to; every configured key is compared in constant time."""
    found: Principal | None = None
    for kind, keys in (
        ("client", settings.client_keys()),
        ("provider", settings.provider_key_values()),
    ):
        for k in keys:
            if hmac.compare_digest(k.encode(), key.encode()):
                found = Principal(kind, key_id(k))  # type: ignore[arg-type]
    return found


def _caller(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(
            401,
            "Unauthorized",
            "send an API key as 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = authenticate(settings, credentials.credentials)
    if principal is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "the API key is not valid for this service",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def _client(caller: Annotated[Principal, Depends(_caller)]) -> Principal:
    if caller.kind != "client":
        raise ApiProblem(403, "Forbidden", "this endpoint needs a client key (ZKINFER_API_KEYS)")
    return caller


def _provider(caller: Annotated[Principal, Depends(_caller)]) -> Principal:
    if caller.kind != "provider":
        raise ApiProblem(
            403, "Forbidden", "this endpoint needs a provider key (ZKINFER_PROVIDER_KEYS)"
        )
    return caller


ClientDep = Annotated[Principal, Depends(_client)]
ProviderDep = Annotated[Principal, Depends(_provider)]


def _nul_field(value: object, where: str) -> str | None:
    """The path of the first string in ``value`` (a JSON document) holding U+0000, or None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_field(key, where) or _nul_field(item, f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_field(item, f"{where}[{i}]")
            if found:
                return found
    return None


async def reject_nul(request: Request) -> None:
    """Refuse U+0000 in the path, the query and a JSON body: PostgreSQL text cannot hold it."""
    field = None
    if "\x00" in request.scope.get("path", ""):
        field = "path"
    for name, value in request.query_params.multi_items():
        if field is None and ("\x00" in value or "\x00" in name):
            field = f"query.{name}"
    if field is None and request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None  # the route's own validation names the problem
        field = _nul_field(body, "body")
    if field is not None:
        raise ApiProblem(
            422,
            "Invalid request",
            f"{field} contains a NUL character (U+0000); remove it",
            errors=[{"field": field, "message": "NUL character (U+0000) not allowed"}],
        )


async def refuse_quarantined(store: Store, settings: Settings, provider: str) -> None:
    """403 for a quarantined provider: no new lease, and no renew, proof or bundle download on
    leases it already holds."""
    record = await store.provider(provider)
    if is_quarantined(record["rejected"], settings.quarantine_after):
        raise ApiProblem(403, "Provider quarantined", f"{record['rejected']} proofs were rejected")
