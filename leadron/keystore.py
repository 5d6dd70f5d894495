"""API keys: created once, stored hashed, compared in constant time, revocable.

A key looks like `ldr_live_sk_<8-char id><32-char secret>`. Only its SHA-256 is
stored (keys are 240 bits of randomness, so a fast hash is enough); the id is
what `leadron keys list` and `revoke` show.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import string
import threading
import time
from collections import OrderedDict
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "ldr_live_sk_"
_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"^ldr_live_sk_([A-Za-z0-9]{8})([A-Za-z0-9]{32})$")
SCOPES = ("events:write", "analytics:read", "reports:write", "exports:write")
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CACHE_SECONDS = 5.0  # a revoked key stops working within this many seconds in a running server
CACHE_ENTRIES = 10_000  # least recently used beyond this are dropped


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant_id: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, key_sha256 TEXT NOT NULL, "
                "tenant_id TEXT NOT NULL, scopes TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)"
            )
            # The provider's verification key (SendGrid: public key; Mailgun: signing key), kept to verify
            # each webhook; the file is 0600 and the key is never logged or printed.
            con.execute(
                "CREATE TABLE IF NOT EXISTS webhook_keys (tenant_id TEXT NOT NULL, provider TEXT NOT NULL, "
                "verification_key TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (tenant_id, provider))"
            )
        os.chmod(path, 0o600)
        # key hash -> (when looked up, record or None); bounded: unknown keys must not grow it without limit.
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def create(self, tenant_id: str, scopes: tuple[str, ...] = SCOPES) -> tuple[str, ApiKey]:
        """A new key for the tenant; the plain key is returned once and never stored."""
        if not TENANT_RE.match(tenant_id):
            raise ValueError(f"tenant id {tenant_id!r} must be 1-64 characters of a-z, 0-9, '-' and '_'")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise ValueError(f"unknown scope(s) {unknown}; choose from {', '.join(SCOPES)}")
        key_id = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        key = PREFIX + key_id + "".join(secrets.choice(_ALPHABET) for _ in range(32))
        record = ApiKey(key_id, tenant_id, tuple(scopes), datetime.now(UTC).isoformat(timespec="seconds"))
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                (key_id, _hash(key), tenant_id, ",".join(scopes), record.created_at),
            )
        return key, record

    def list(self, tenant_id: str | None = None) -> list[ApiKey]:
        sql = "SELECT key_id, tenant_id, scopes, created_at, revoked_at FROM api_keys"
        params: tuple = ()
        if tenant_id:
            sql, params = sql + " WHERE tenant_id = ?", (tenant_id,)
        with closing(self._connect()) as con:
            rows = con.execute(sql + " ORDER BY created_at, key_id", params).fetchall()
        return [ApiKey(k, t, tuple(s.split(",")), c, r) for k, t, s, c, r in rows]

    def revoke(self, key_id: str) -> bool:
        with closing(self._connect()) as con, con:
            changed = con.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (datetime.now(UTC).isoformat(timespec="seconds"), key_id),
            ).rowcount
        with self._lock:
            self._cache.clear()
        return changed == 1

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key's record, or None for a missing, malformed, unknown or revoked key (all alike)."""
        if not presented:
            return None
        match = _KEY_RE.match(presented)
        if not match:
            return None
        digest = _hash(presented)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            if cached and now - cached[0] < CACHE_SECONDS:
                self._cache.move_to_end(digest)
                return cached[1]
        with closing(self._connect()) as con:
            row = con.execute(
                "SELECT key_sha256, tenant_id, scopes, created_at, revoked_at FROM api_keys WHERE key_id = ?",
                (match.group(1),),
            ).fetchone()
        record = None
        if row and hmac.compare_digest(row[0], digest) and row[4] is None:
            record = ApiKey(match.group(1), row[1], tuple(row[2].split(",")), row[3], None)
        with self._lock:
            self._cache[digest] = (now, record)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return record

    # ---- provider webhook keys ---------------------------------------------------------------
    def set_webhook_key(self, tenant_id: str, provider: str, verification_key: str) -> None:
        if not TENANT_RE.match(tenant_id):
            raise ValueError(f"tenant id {tenant_id!r} must be 1-64 characters of a-z, 0-9, '-' and '_'")
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT INTO webhook_keys VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, provider) DO UPDATE "
                "SET verification_key = excluded.verification_key, created_at = excluded.created_at",
                (tenant_id, provider, verification_key, datetime.now(UTC).isoformat(timespec="seconds")),
            )

    def webhook_key(self, tenant_id: str, provider: str) -> str | None:
        with closing(self._connect()) as con:
            row = con.execute(
                "SELECT verification_key FROM webhook_keys WHERE tenant_id = ? AND provider = ?", (tenant_id, provider)
            ).fetchone()
        return row[0] if row else None
