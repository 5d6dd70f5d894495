"""Signed, tamper-evident tokens for open pixels, click redirects and webhook URLs.

token = base64url(JSON payload) "." base64url(HMAC-SHA256(secret, kind + "." + payload)).
The kind is part of what is signed, so a pixel token cannot be used as a click or webhook token.
Open and click tokens carry their expiry (`e`, Unix seconds; LEADRON_TRACKING_TOKEN_TTL_DAYS, 180 days by
default): a token without one, or past it, is refused like a forged one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

OPEN, CLICK, WEBHOOK = "open", "click", "webhook"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, kind: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret, f"{kind}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: bytes, kind: str, token: str) -> dict[str, Any] | None:
    """The payload if the token is intact and of this kind, else None."""
    try:
        body, mac = token.split(".")
        expected = hmac.new(secret, f"{kind}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError, json.JSONDecodeError, base64.binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


DEFAULT_TTL_DAYS = 180


def _expiry(ttl_days: float) -> int:
    return int(time.time() + ttl_days * 86_400)


def open_token(
    secret: bytes,
    tenant_id: str,
    lead_id: str | None,
    message_id: str,
    execution_id: str | None = None,
    ttl_days: float = DEFAULT_TTL_DAYS,
) -> str:
    return sign(
        secret, OPEN, {"t": tenant_id, "l": lead_id, "m": message_id, "x": execution_id, "e": _expiry(ttl_days)}
    )


def click_token(
    secret: bytes,
    tenant_id: str,
    lead_id: str | None,
    message_id: str,
    url: str,
    execution_id: str | None = None,
    ttl_days: float = DEFAULT_TTL_DAYS,
) -> str:
    return sign(
        secret,
        CLICK,
        {"t": tenant_id, "l": lead_id, "m": message_id, "x": execution_id, "u": url, "e": _expiry(ttl_days)},
    )


def verify_tracking(secret: bytes, kind: str, token: str, now: float | None = None) -> dict[str, Any] | None:
    """An open or click token's payload if intact, of this kind and not expired, else None."""
    payload = verify(secret, kind, token)
    if payload is None or not isinstance(payload.get("e"), int) or isinstance(payload.get("e"), bool):
        return None
    return payload if payload["e"] > (time.time() if now is None else now) else None


def repeat_id(token: str, client: str, bucket_s: int, now: float | None = None) -> str:
    """The event id of a hit: the same token from the same client within one bucket gets the same id, so the
    idempotency index lands a repeated fetch (mail-client prefetch, reloads, a replayed URL) once."""
    bucket = int((time.time() if now is None else now) // max(1, bucket_s))
    digest = hashlib.sha256(f"{token}|{client}|{bucket}".encode()).hexdigest()[:32]
    return f"trk_{digest}"


def webhook_token(secret: bytes, tenant_id: str, provider: str) -> str:
    return sign(secret, WEBHOOK, {"t": tenant_id, "p": provider})
