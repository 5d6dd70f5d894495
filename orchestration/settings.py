"""The one settings module. Every path and option comes from here.

Values are read from the environment when a function is called, never at import
time, so tests and the CLI can point a process at another LEADRON_HOME.
Every variable is listed in `.env.example` and in the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # a code location, not a setting


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_path: Path
    landing_dir: Path
    dagster_home: Path
    partition_start: date
    dbt_target: str
    writer_lock_timeout_s: float
    api_rate_per_s: float
    api_rate_burst: float
    api_max_body_bytes: int
    api_seal_interval_s: float
    api_status_index_interval_s: float
    api_secret: str | None
    mailgun_signing_key: str | None
    log_level: str
    as_of: str | None
    ml_min_leads: int
    ml_min_conversions: int
    ml_psi_threshold: float
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_url_ttl_s: int
    metadata_url: str | None

    @property
    def events_landing_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def dimensions_landing_dir(self) -> Path:
        return self.landing_dir / "dimensions"

    @property
    def landing_manifest_path(self) -> Path:
        return self.landing_dir / "manifest.sqlite"

    @property
    def writer_lock_path(self) -> Path:
        return self.home / "warehouse.lock"

    @property
    def models_dir(self) -> Path:
        # Trained lead-score models, one folder per version, and production.json naming the promoted one.
        return self.home / "models"

    @property
    def publish_dir(self) -> Path:
        # What readers may read: Parquet marts and the read-only DuckDB copy (orchestration/publish.py).
        return self.home / "published"

    @property
    def reports_dir(self) -> Path:
        # Report definitions (YAML), LEADRON_REPORTS_DIR.
        return Path(_env("LEADRON_REPORTS_DIR", str(self.home / "reports"))).expanduser().resolve()

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def api_dir(self) -> Path:
        return self.home / "api"

    @property
    def api_keys_path(self) -> Path:
        return self.api_dir / "keys.sqlite"

    @property
    def api_events_path(self) -> Path:
        # Part of the landing zone: the API's durable log, sealed into landing batches.
        return self.landing_dir / "api" / "events.sqlite"

    def secret(self) -> bytes:
        """HMAC key for tracking and webhook tokens: LEADRON_API_SECRET, else one generated once under api/."""
        if self.api_secret:
            return self.api_secret.encode()
        path = self.api_dir / "secret"
        if not path.exists():
            import secrets

            self.api_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    def ensure_dirs(self) -> None:
        for path in (self.home, self.events_landing_dir, self.dimensions_landing_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    home = Path(_env("LEADRON_HOME", str(PROJECT_ROOT / ".leadron"))).expanduser().resolve()
    return Settings(
        home=home,
        warehouse_path=Path(_env("LEADRON_WAREHOUSE_PATH", str(home / "warehouse.duckdb"))).resolve(),
        landing_dir=Path(_env("LEADRON_LANDING_DIR", str(home / "landing"))).resolve(),
        dagster_home=Path(_env("DAGSTER_HOME", str(home / "dagster"))).resolve(),
        partition_start=date.fromisoformat(_env("LEADRON_PARTITION_START", "2024-01-01")),
        dbt_target=_env("LEADRON_DBT_TARGET", "duckdb"),
        writer_lock_timeout_s=float(_env("LEADRON_WRITER_LOCK_TIMEOUT", "900")),
        api_rate_per_s=float(_env("LEADRON_RATE_LIMIT", "1000")),
        api_rate_burst=float(_env("LEADRON_RATE_BURST", "2000")),
        api_max_body_bytes=int(_env("LEADRON_MAX_BODY_BYTES", str(1024 * 1024))),
        api_seal_interval_s=float(_env("LEADRON_SEAL_INTERVAL", "5")),
        api_status_index_interval_s=float(_env("LEADRON_STATUS_INDEX_INTERVAL", "0.5")),
        api_secret=os.environ.get("LEADRON_API_SECRET") or None,
        mailgun_signing_key=os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY") or None,
        log_level=_env("LEADRON_LOG_LEVEL", "INFO").upper(),
        as_of=os.environ.get("LEADRON_AS_OF") or None,
        ml_min_leads=int(_env("LEADRON_ML_MIN_LEADS", "100")),
        ml_min_conversions=int(_env("LEADRON_ML_MIN_CONVERSIONS", "20")),
        ml_psi_threshold=float(_env("LEADRON_ML_PSI_THRESHOLD", "0.2")),
        s3_bucket=os.environ.get("LEADRON_S3_BUCKET") or None,
        s3_endpoint_url=os.environ.get("LEADRON_S3_ENDPOINT_URL") or None,
        s3_url_ttl_s=int(_env("LEADRON_S3_URL_TTL", "3600")),
        metadata_url=os.environ.get("LEADRON_METADATA_URL") or None,
    )


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment a dbt subprocess needs: the warehouse path its profile reads and the as-of time
    (validated here, since the macro as_of_timestamp() writes it into SQL as a literal)."""
    as_of = ""
    if settings.as_of:
        try:
            as_of = datetime.fromisoformat(settings.as_of).replace(tzinfo=None).isoformat(sep=" ")
        except ValueError:
            raise ValueError(f"LEADRON_AS_OF: {settings.as_of!r} is not an ISO 8601 timestamp") from None
    return {"LEADRON_WAREHOUSE_PATH": str(settings.warehouse_path), "LEADRON_AS_OF": as_of}


@contextmanager
def exported(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for subprocesses started inside the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
