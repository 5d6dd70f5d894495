"""The providers' real signing schemes, for tests: SendGrid's Signed Event Webhook (ECDSA P-256 over
timestamp + body) and Mailgun's HMAC-SHA256 of timestamp + token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from leadron.webhook_auth import SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP


class SendGridAccount:
    """A key pair like the one SendGrid makes when Signed Event Webhooks are turned on."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.verification_key = base64.b64encode(der).decode()  # what SendGrid's settings page shows

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
            SENDGRID_TIMESTAMP: stamp,
            "Content-Type": "application/json",
        }

    def post(self, client, url: str, events: list[dict[str, Any]], timestamp: int | None = None):
        body = json.dumps(events).encode()
        return client.post(url, content=body, headers=self.sign(body, timestamp))


def mailgun_signature(signing_key: str, timestamp: float | None = None, token: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    token = token or secrets.token_hex(25)
    digest = hmac.new(signing_key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}
