"""The one settings module. Every path and option comes from here.

Values are read from the environment when a function is called, never at import
time, so tests and the CLI can point a process at another LEADRON_HOME.
Every variable is listed in `.env.example` and in the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # a code location, not a setting


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in choices:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _switch(name: str, default: bool) -> bool:
    return _choice(name, str(default).lower(), ("true", "false")) == "true"


DBT_LOG_LEVELS = ("debug", "info", "warn", "error", "none")


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_path: Path
    landing_dir: Path
    dagster_home: Path
    partition_start: date
    dbt_target: str
    dbt_target_dir: Path
    dbt_log_level_file: str
    spark_dir: Path
    raw_parquet_dir: Path
    spark_master: str
    spark_driver_memory: str
    spark_shuffle_partitions: int
    spark_java_options: str
    spark_whole_stage_codegen: bool
    writer_lock_timeout_s: float
    api_rate_per_s: float
    api_rate_burst: float
    api_max_body_bytes: int
    api_seal_interval_s: float
    api_status_index_interval_s: float
    api_secret: str | None
    tracking_token_ttl_days: int
    tracking_dedup_s: int
    webhook_tolerance_s: int
    auth_failure_rate: float
    anonymous_rate: float
    api_workers: int
    read_timeout_s: float
    read_memory_limit: str
    read_pool_size: int
    heavy_read_pool_size: int
    read_queue_per_thread: int
    export_queue_per_tenant: int
    log_level: str
    as_of: str | None
    ml_min_leads: int
    ml_min_conversions: int
    ml_psi_threshold: float
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_url_ttl_s: int
    metadata_url: str | None
    retention_api_log_days: float
    retention_export_days: float
    retention_report_runs: int
    retention_delivery_days: float
    retention_dagster_run_days: float
    stale_partial_s: float
    landing_sensor_interval_s: int

    @property
    def raw_in_warehouse(self) -> bool:
        """DuckDB reads raw.* from the warehouse file; other engines (Spark) read it as Parquet files."""
        return self.dbt_target == "duckdb"

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
        # What readers may read: Parquet marts and the read-only DuckDB copy (leadron/publish.py).
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

    @property
    def secret_path(self) -> Path:
        return self.api_dir / "secret"

    def secret(self) -> bytes:
        """HMAC key for tracking and webhook tokens: LEADRON_API_SECRET, else one generated once under api/.

        The generated one is written whole before anyone can read it (temporary file, fsync, then a hard
        link that fails when another process won the race), so every process of a fresh home uses one key
        and a crash mid-write leaves only a temporary file. A key shorter than MIN_SECRET_BYTES is refused:
        with an empty key anyone could forge tracking and webhook tokens for any tenant."""
        if self.api_secret:
            if len(self.api_secret.encode()) < MIN_SECRET_BYTES:
                raise SecretError(
                    f"LEADRON_API_SECRET is {len(self.api_secret.encode())} bytes; it must be at least "
                    f"{MIN_SECRET_BYTES} (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
                )
            return self.api_secret.encode()
        path = self.secret_path
        value = _read_secret(path)
        if value is None or value == b"":  # never written, or the debris of a start that died mid-write
            value = _create_secret(path)
        if len(value) < MIN_SECRET_BYTES:
            raise SecretError(
                f"{path} holds a {len(value)}-byte secret; at least {MIN_SECRET_BYTES} are needed. "
                "Replace it (tokens signed with it stop working) or set LEADRON_API_SECRET."
            )
        return value

    def ensure_dirs(self) -> None:
        private_dir(self.home)
        for path in (self.events_landing_dir, self.dimensions_landing_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)

    def restrict_permissions(self) -> None:
        """LEADRON_HOME 0700 and its secrets 0600, also for a home made by an older version (a server start)."""
        os.umask(0o077)
        self.ensure_dirs()
        for folder in (self.api_dir, self.api_events_path.parent, self.exports_dir):
            if folder.exists():
                os.chmod(folder, 0o700)
        for name in (
            self.api_keys_path,
            self.secret_path,
            self.api_events_path,
            self.home / "metadata.sqlite",
            self.home / "deliveries.sqlite",
            self.exports_dir / "exports.sqlite",
        ):
            for path in (name, Path(f"{name}-wal"), Path(f"{name}-shm")):
                if path.exists():
                    os.chmod(path, 0o600)


MIN_SECRET_BYTES = 32


class SecretError(RuntimeError):
    """The HMAC secret is missing or too short to sign with."""


def private_dir(path: Path) -> Path:
    """A folder only its owner can enter (LEADRON_HOME holds keys, the API log and exports)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _read_secret(path: Path) -> bytes | None:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        return None


def _create_secret(path: Path) -> bytes:
    """Generate the secret under a lock (workers of a fresh home start together); written whole or not at all."""
    import fcntl
    import secrets

    private_dir(path.parent)
    with open(path.with_name(".secret.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = _read_secret(path)
        if value:  # another process made it while we waited
            return value
        tmp = path.with_name(f".secret-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: readers see no file or the whole key
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path.read_bytes().strip()


def _memory(value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value):
        raise ValueError(f"LEADRON_READ_MEMORY_LIMIT: {value!r} is not a size such as 4GB or 512MiB")
    return value


def home_dbt_target_dir(home: Path) -> Path:
    """dbt's target folder (manifest, partial parse, run results) unless LEADRON_DBT_TARGET_DIR says otherwise: one
    per home, since dbt's partial parse holds for one profile only (the warehouse's path is in it) and homes
    sharing a folder re-parsed the whole project (4-7 s here) whenever dbt ran on another home than the last."""
    return home / "dbt-target"


def get_settings() -> Settings:
    home = Path(_env("LEADRON_HOME", str(PROJECT_ROOT / ".leadron"))).expanduser().resolve()
    return Settings(
        home=home,
        warehouse_path=Path(_env("LEADRON_WAREHOUSE_PATH", str(home / "warehouse.duckdb"))).resolve(),
        landing_dir=Path(_env("LEADRON_LANDING_DIR", str(home / "landing"))).resolve(),
        dagster_home=Path(_env("DAGSTER_HOME", str(home / "dagster"))).resolve(),
        partition_start=date.fromisoformat(_env("LEADRON_PARTITION_START", "2024-01-01")),
        dbt_target=_env("LEADRON_DBT_TARGET", "duckdb"),
        dbt_target_dir=Path(_env("LEADRON_DBT_TARGET_DIR", str(home_dbt_target_dir(home)))).resolve(),
        dbt_log_level_file=_choice("LEADRON_DBT_LOG_LEVEL_FILE", "none", DBT_LOG_LEVELS),
        spark_dir=Path(_env("LEADRON_SPARK_DIR", str(home / "spark"))).resolve(),
        raw_parquet_dir=Path(_env("LEADRON_RAW_PARQUET_DIR", str(home / "spark" / "raw"))).resolve(),
        spark_master=_env("LEADRON_SPARK_MASTER", "local[*]"),
        spark_driver_memory=_env("LEADRON_SPARK_DRIVER_MEMORY", "4g"),
        spark_shuffle_partitions=int(_env("LEADRON_SPARK_SHUFFLE_PARTITIONS", "4")),
        spark_java_options=_env("LEADRON_SPARK_JAVA_OPTIONS", ""),
        spark_whole_stage_codegen=_switch("LEADRON_SPARK_WHOLE_STAGE_CODEGEN", True),
        writer_lock_timeout_s=float(_env("LEADRON_WRITER_LOCK_TIMEOUT", "900")),
        api_rate_per_s=float(_env("LEADRON_RATE_LIMIT", "5000")),
        api_rate_burst=float(_env("LEADRON_RATE_BURST", "10000")),
        api_max_body_bytes=int(_env("LEADRON_MAX_BODY_BYTES", str(1024 * 1024))),
        api_seal_interval_s=float(_env("LEADRON_SEAL_INTERVAL", "5")),
        api_status_index_interval_s=float(_env("LEADRON_STATUS_INDEX_INTERVAL", "0.5")),
        api_secret=os.environ.get("LEADRON_API_SECRET") or None,
        tracking_token_ttl_days=int(_env("LEADRON_TRACKING_TOKEN_TTL_DAYS", "180")),
        tracking_dedup_s=int(_env("LEADRON_TRACKING_DEDUP_SECONDS", "60")),
        webhook_tolerance_s=int(_env("LEADRON_WEBHOOK_TOLERANCE", "300")),
        auth_failure_rate=float(_env("LEADRON_AUTH_FAILURE_RATE", "20")),
        anonymous_rate=float(_env("LEADRON_ANONYMOUS_RATE_LIMIT", "200")),
        api_workers=max(1, int(_env("LEADRON_API_WORKERS", "1"))),
        read_timeout_s=float(_env("LEADRON_READ_TIMEOUT", "15")),
        read_memory_limit=_memory(_env("LEADRON_READ_MEMORY_LIMIT", "4GB")),
        read_pool_size=int(_env("LEADRON_READ_POOL", "8")),
        heavy_read_pool_size=int(_env("LEADRON_HEAVY_READ_POOL", "2")),
        read_queue_per_thread=int(_env("LEADRON_READ_QUEUE_PER_THREAD", "4")),
        export_queue_per_tenant=int(_env("LEADRON_EXPORT_QUEUE_PER_TENANT", "3")),
        log_level=_env("LEADRON_LOG_LEVEL", "INFO").upper(),
        as_of=os.environ.get("LEADRON_AS_OF") or None,
        ml_min_leads=int(_env("LEADRON_ML_MIN_LEADS", "100")),
        ml_min_conversions=int(_env("LEADRON_ML_MIN_CONVERSIONS", "20")),
        ml_psi_threshold=float(_env("LEADRON_ML_PSI_THRESHOLD", "0.2")),
        s3_bucket=os.environ.get("LEADRON_S3_BUCKET") or None,
        s3_endpoint_url=os.environ.get("LEADRON_S3_ENDPOINT_URL") or None,
        s3_url_ttl_s=int(_env("LEADRON_S3_URL_TTL", "3600")),
        metadata_url=os.environ.get("LEADRON_METADATA_URL") or None,
        retention_api_log_days=float(_env("LEADRON_RETENTION_API_LOG_DAYS", "7")),
        retention_export_days=float(_env("LEADRON_RETENTION_EXPORT_DAYS", "7")),
        retention_report_runs=int(_env("LEADRON_RETENTION_REPORT_RUNS", "100")),
        retention_delivery_days=float(_env("LEADRON_RETENTION_DELIVERY_DAYS", "365")),
        retention_dagster_run_days=float(_env("LEADRON_RETENTION_DAGSTER_RUN_DAYS", "30")),
        stale_partial_s=float(_env("LEADRON_STALE_PARTIAL_SECONDS", "3600")),
        landing_sensor_interval_s=int(_env("LEADRON_LANDING_SENSOR_INTERVAL", "60")),
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
    spark = {
        "LEADRON_SPARK_DIR": str(settings.spark_dir),
        "LEADRON_RAW_PARQUET_DIR": str(settings.raw_parquet_dir),
        "LEADRON_SPARK_MASTER": settings.spark_master,
        "LEADRON_SPARK_DRIVER_MEMORY": settings.spark_driver_memory,
        "LEADRON_SPARK_SHUFFLE_PARTITIONS": str(settings.spark_shuffle_partitions),
        "LEADRON_SPARK_JAVA_OPTIONS": settings.spark_java_options,
        "LEADRON_SPARK_WHOLE_STAGE_CODEGEN": str(settings.spark_whole_stage_codegen).lower(),
    }
    # No dbt.log by default: Dagster keeps each run's dbt output; dbt's file log cost a small run's 128 nodes
    # ~2 s of 8.7 (measured, at info as at debug).
    logs = {"DBT_LOG_LEVEL_FILE": settings.dbt_log_level_file}
    return {"LEADRON_WAREHOUSE_PATH": str(settings.warehouse_path), "LEADRON_AS_OF": as_of, **spark, **logs}


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
