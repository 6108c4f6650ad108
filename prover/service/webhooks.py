"""Webhooks on terminal states, signed as Standard Webhooks specifies.

Each delivery carries ``webhook-id`` (stable per request and state: receivers dedupe on it),
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
The secret is ``ZKINFER_WEBHOOK_SECRET`` (``whsec_`` + base64, as Standard Webhooks writes it).
A URL is checked when the request is made, so a bad one is refused before anything is stored, and
again at delivery: the host is resolved, every address must be public (not loopback, private,
link-local, multicast, reserved, unspecified or IPv4-mapped), and the delivery connects to the
checked address itself (the TLS name stays the URL's host), so DNS rebinding cannot switch the
target between check and connect. Private targets are allowed only in development mode
(``ZKINFER_DEV``), which the local test receivers use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "WebhookUrlError",
    "check_webhook_url",
    "pinned_target",
    "secret_bytes",
    "sign",
    "webhook_headers",
]

MAX_URL_LENGTH = 2000


class WebhookUrlError(ValueError):
    """The webhook URL cannot or may not be called."""


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` if the service may POST to it; private and loopback addresses only in dev mode."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"webhook_url is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookUrlError("webhook_url must be an absolute https:// URL with a host")
    if parts.scheme == "http" and not allow_private:
        raise WebhookUrlError("webhook_url must use https (plain http only in development mode)")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError(
            "webhook_url must not carry credentials; verify the signature instead"
        )
    if port == 0:
        raise WebhookUrlError("webhook_url has port 0")
    host = parts.hostname
    _check_host_spelling(host)
    if allow_private:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise _private(host, host)
    # a name that does not resolve now is resolved (and refused unless public) at every delivery
    with contextlib.suppress(_Unresolved):
        _public_addresses(host, port or _default_port(parts.scheme))
    return url


class _Unresolved(Exception):
    pass


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _private(host: str, address: str) -> WebhookUrlError:
    return WebhookUrlError(
        f"webhook_url points at a private or loopback address ({host} -> {address}); "
        "use a public host (private addresses only in development mode)"
    )


def _check_host_spelling(host: str) -> None:
    """Refuse a trailing dot and IPv4 spellings other than dotted decimal (127.1, 0x7f000001)."""
    if host.endswith("."):
        raise WebhookUrlError(
            f"webhook_url host {host!r} ends with a dot; write the name without it"
        )
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
    except OSError:
        return  # a name: resolved and checked below
    raise WebhookUrlError(
        f"webhook_url host {host!r} is an IP address in a non-standard form; "
        "write IPv4 addresses as four decimal numbers (a.b.c.d) or use a host name"
    )


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address.sixtofour is not None:
            return False
        if address.teredo is not None:
            return False
    return bool(
        address.is_global
        and not (
            address.is_loopback
            or address.is_private
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
    )


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _Unresolved(host) from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise _Unresolved(host)
    return found


def _public_addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    addresses = _resolve(host, port)
    for address in addresses:
        if not _is_public(address):
            raise _private(host, str(address))
    return addresses


def pinned_target(url: str, *, allow_private: bool) -> tuple[str, dict[str, str], str]:
    """Check ``url`` again and resolve it once: (URL naming the checked IP, Host header, TLS name).

    Raises :class:`WebhookUrlError` when the host no longer resolves or any address it resolves
    to is not public (unless ``allow_private``).
    """
    check_webhook_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _default_port(parts.scheme)
    try:
        addresses = _resolve(host, port) if allow_private else _public_addresses(host, port)
    except _Unresolved:
        raise WebhookUrlError(f"webhook_url host {host!r} does not resolve") from None
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return pinned, {"host": host_header}, host


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (any other string is used as raw bytes)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_headers(
    secret: str, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers (and the content type) for ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def event_body(row: dict[str, Any]) -> bytes:
    """The JSON a webhook delivers for a request that reached a terminal state."""
    return json.dumps(
        {
            "type": f"inference.{row['status']}",
            "data": {
                "id": row["id"],
                "model_id": row["model_id"],
                "status": row["status"],
                "reason": row["reason"],
            },
        },
        separators=(",", ":"),
    ).encode()
