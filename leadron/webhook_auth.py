"""Provider webhook signatures, as each provider signs them.

SendGrid (Signed Event Webhook): ECDSA P-256 with SHA-256 over the `X-Twilio-Email-Event-Webhook-Timestamp`
header followed by the raw body; the signature (base64 DER) is in `X-Twilio-Email-Event-Webhook-Signature`,
and the account's verification key is a base64 DER (or PEM) P-256 public key.
Mailgun: hex HMAC-SHA256 of `timestamp + token` with the account's webhook signing key, in the body's
`signature` object; a token is accepted once (ReplayCache).
Both refuse timestamps more than LEADRON_WEBHOOK_TOLERANCE seconds (default 300) from now.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
PROVIDERS = ("sendgrid", "mailgun")


class SignatureError(ValueError):
    """Why a webhook is refused (the field and the reason, for the 401 envelope)."""

    def __init__(self, field: str, issue: str):
        super().__init__(f"{field}: {issue}")
        self.field, self.issue = field, issue


@functools.lru_cache(maxsize=1024)  # parsed once per registered key, not on every webhook
def sendgrid_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows (base64 DER), or a PEM; ValueError unless it is a P-256 key."""
    text = text.strip()
    try:
        key = (
            load_pem_public_key(text.encode())
            if text.startswith("-----BEGIN")
            else load_der_public_key(base64.b64decode(text, validate=True))
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not a public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("SendGrid's verification key is an ECDSA P-256 public key")
    return key


def _fresh(timestamp: str, tolerance_s: float, field: str, now: float | None) -> None:
    try:
        stamp = float(timestamp)
    except (TypeError, ValueError):
        raise SignatureError(field, "missing or not a Unix timestamp") from None
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        raise SignatureError(field, f"more than {int(tolerance_s)} s from the server's clock")


def verify_sendgrid(
    public_key: str, headers: dict[str, str], body: bytes, tolerance_s: float, now: float | None = None
) -> None:
    signature, timestamp = headers.get(SENDGRID_SIGNATURE.lower()), headers.get(SENDGRID_TIMESTAMP.lower())
    if not signature:
        raise SignatureError(SENDGRID_SIGNATURE, "missing")
    _fresh(timestamp, tolerance_s, SENDGRID_TIMESTAMP, now)
    try:
        sendgrid_public_key(public_key).verify(
            base64.b64decode(signature, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, binascii.Error):
        raise SignatureError(SENDGRID_SIGNATURE, "does not verify") from None


def verify_mailgun(
    signing_key: str, signature: Any, tolerance_s: float, replay: ReplayCache, now: float | None = None
) -> None:
    if not isinstance(signature, dict):
        raise SignatureError("signature", "missing")
    timestamp, token, given = (str(signature.get(k) or "") for k in ("timestamp", "token", "signature"))
    _fresh(timestamp, tolerance_s, "signature.timestamp", now)
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(expected, given):
        raise SignatureError("signature", "does not verify")
    if not replay.first_use(f"mailgun:{token}", tolerance_s):
        raise SignatureError("signature.token", "already used (a replayed request)")


class ReplayCache:
    """Tokens seen within the tolerance window, shared by every worker process (one SQLite file)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._last_prune = 0.0
        with closing(self._connect()) as con, con:
            con.execute("PRAGMA journal_mode=WAL")  # persistent: set once for the file
            con.execute("CREATE TABLE IF NOT EXISTS seen (token TEXT PRIMARY KEY, seen_at REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def first_use(self, token: str, window_s: float) -> bool:
        now = time.time()
        with self._lock, closing(self._connect()) as con, con:
            if now - self._last_prune > 60:  # a token older than the window fails the timestamp check anyway
                con.execute("DELETE FROM seen WHERE seen_at < ?", (now - 2 * window_s,))
                self._last_prune = now
            return con.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (token, now)).rowcount == 1
