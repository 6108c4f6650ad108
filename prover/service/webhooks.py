"""Webhooks on terminal states, signed as Standard Webhooks specifies.

Each delivery carries ``webhook-id`` (stable per request and state: receivers dedupe on it),
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
The secret is ``ZKINFER_WEBHOOK_SECRET`` (``whsec_`` + base64, as Standard Webhooks writes it).
A URL is checked when the request is made, so a bad one is refused before anything is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["WebhookUrlError", "check_webhook_url", "secret_bytes", "sign", "webhook_headers"]

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
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    local = host == "localhost" or host.endswith(".localhost")
    if not allow_private and (local or (address is not None and not address.is_global)):
        raise WebhookUrlError(
            f"webhook_url points at a private or loopback address ({host}); "
            "use a public host (private addresses only in development mode)"
        )
    return url


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
