"""The metadata store: API-created reports, their schedules and runs, report deliveries and exports.

SQLAlchemy Core on LEADRON_METADATA_URL (default: SQLite at $LEADRON_HOME/metadata.sqlite; a
postgresql+psycopg:// URL selects PostgreSQL, the store for several API workers, a Dagster daemon and
run workers on more than one machine). The schema is created and upgraded by the Alembic migrations in
leadron/migrations/, run once per process before the first use (under a lock, so workers that start
together migrate once). Every query of the modules that use it is scoped by tenant with bound values.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from filelock import FileLock

from leadron.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_MIGRATION_LOCK = 7_310_001  # pg_advisory_lock key: one migrating process at a time

META = sa.MetaData()
REPORTS = sa.Table(
    "reports",
    META,
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False, index=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
SCHEDULES = sa.Table(
    "report_schedules",
    META,
    sa.Column("schedule_id", sa.String(64), primary_key=True),
    sa.Column("report_id", sa.String(64), nullable=False, index=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("schedule", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
RUNS = sa.Table(
    "report_runs",
    META,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("report_id", sa.String(64), nullable=False, index=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("row_count", sa.Integer),
    sa.Column("rows", sa.Text),
    sa.Column("publication_version", sa.String(40)),
    sa.Column("data_fresh_as_of", sa.String(40)),
    sa.Column("error", sa.Text),
)
DELIVERIES = sa.Table(
    "deliveries",
    META,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("report_id", sa.String(64), nullable=False),
    sa.Column("schedule_id", sa.String(64), nullable=False),
    sa.Column("due_at", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recipients", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("formats", sa.Text),
    sa.Column("rows", sa.Integer),
    sa.Column("data_freshness_watermark", sa.String(40)),
    sa.Column("publication_version", sa.String(40)),
    sa.Column("sent_at", sa.String(40)),
    sa.Column("error", sa.Text),
    sa.Index("ix_deliveries_report", "tenant_id", "report_id", "schedule_id"),
)
EXPORTS = sa.Table(
    "exports",
    META,
    sa.Column("export_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows", sa.Integer),
    sa.Column("path", sa.Text),
    sa.Column("object_key", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("data_freshness_watermark", sa.String(40)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40)),
    sa.Index("ix_exports_tenant_status", "tenant_id", "status", "created_at"),
)


def metadata_url(settings: Settings) -> str:
    return settings.metadata_url or f"sqlite:///{settings.home / 'metadata.sqlite'}"


def engine(settings: Settings) -> sa.Engine:
    settings.home.mkdir(parents=True, exist_ok=True)
    return _migrated_engine(metadata_url(settings), str(settings.home))


@functools.cache
def _migrated_engine(url: str, home: str) -> sa.Engine:
    if url.startswith("sqlite"):
        created = sa.create_engine(url, connect_args={"timeout": 30})
        # Every transaction takes SQLite's write lock at BEGIN: a count-then-insert (the export queue) is then
        # atomic across the API workers, as it is on PostgreSQL under a table lock.
        sa.event.listen(created, "connect", lambda dbapi, record: setattr(dbapi, "isolation_level", None))
        sa.event.listen(created, "begin", lambda con: con.exec_driver_sql("BEGIN IMMEDIATE"))
        with FileLock(str(Path(home) / "metadata.migrate.lock"), timeout=120):
            upgrade(created)
    else:
        created = sa.create_engine(url, pool_pre_ping=True)
        upgrade(created)
    return created


def upgrade(target: sa.Engine) -> None:
    """Create or upgrade the schema to the newest migration (Alembic)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with target.begin() as con:
        if con.dialect.name == "postgresql":
            con.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        config.attributes["connection"] = con
        command.upgrade(config, "head")


@contextmanager
def locked(con: sa.Connection, table: sa.Table):
    """Hold a write lock on `table` for the rest of the transaction (SQLite: the whole file, from BEGIN)."""
    if con.dialect.name == "postgresql":
        con.execute(sa.text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
    yield con
