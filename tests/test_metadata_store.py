"""The metadata store on SQLite and on a real PostgreSQL server: the same tests on both (Alembic migrations,
reports, schedules, runs, deliveries, exports, tenant scoping, the queue limit under concurrency)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from leadron import exports, metadata, report_store
from leadron.report_delivery import _record, deliveries, delivery_page, record_failure
from leadron.report_schedules import MAX_SCHEDULES_PER_TENANT, ReportSchedule
from leadron.reports import ReportDefinition

REPORT = {
    "id": "r1",
    "name": "Weekly",
    "tenant_id": "acme",
    "metrics": ["sent"],
    "dimensions": ["date_day"],
    "date_range": {"last_days": 7},
}


def _tables(settings) -> set[str]:
    return set(sa.inspect(metadata.engine(settings)).get_table_names())


def test_migrations_create_every_table_once(metadata_home):
    assert {"reports", "report_schedules", "report_runs", "deliveries", "exports", "alembic_version"} <= _tables(
        metadata_home
    )
    metadata.upgrade(metadata.engine(metadata_home))  # a second upgrade is a no-op
    with metadata.engine(metadata_home).connect() as con:
        assert con.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0001"]


def test_the_migrations_build_exactly_the_tables_the_code_declares(metadata_home):
    """leadron/metadata.py and leadron/migrations/ describe one schema: Alembic's autogenerate finds no drift."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with metadata.engine(metadata_home).connect() as con:
        assert compare_metadata(MigrationContext.configure(con), metadata.META) == []


def test_a_store_made_before_migrations_is_upgraded_in_place(tmp_path, monkeypatch):
    """A SQLite store that create_all made (reports, schedules, runs; no alembic_version) keeps its rows."""
    from tests.conftest import use_home

    monkeypatch.delenv("LEADRON_METADATA_URL", raising=False)
    settings = use_home(monkeypatch, tmp_path / "home")
    settings.home.mkdir(parents=True)
    old = sa.create_engine(f"sqlite:///{settings.home / 'metadata.sqlite'}")
    old_meta = sa.MetaData()
    for table in (metadata.REPORTS, metadata.SCHEDULES, metadata.RUNS):
        table.to_metadata(old_meta)
    old_meta.create_all(old)
    with old.begin() as con:
        con.execute(
            old_meta.tables["reports"]
            .insert()
            .values(
                report_id="old",
                tenant_id="acme",
                definition=ReportDefinition.model_validate({**REPORT, "id": "old"}).model_dump_json(),
                created_at="2026-01-01",
                updated_at="2026-01-01",
            )
        )
    old.dispose()
    assert report_store.get_report(settings, "acme", "old")["definition"].id == "old"
    assert {"deliveries", "exports", "alembic_version"} <= _tables(settings)


def test_reports_schedules_and_runs_are_scoped_by_tenant(metadata_home):
    definition = ReportDefinition.model_validate(REPORT)
    report_store.create_report(metadata_home, definition)
    schedule = ReportSchedule(id="s1", cadence="daily", recipients=["a@acme.example"])
    report_store.create_schedule(metadata_home, "acme", "r1", schedule)
    run_id = report_store.record_run(metadata_home, "acme", "r1", status="succeeded", row_count=2, rows="[]")
    assert report_store.get_report(metadata_home, "acme", "r1")["definition"] == definition
    assert report_store.get_report(metadata_home, "globex", "r1") is None
    assert [s["schedule"].id for s in report_store.list_schedules(metadata_home, "acme", "r1")] == ["s1"]
    assert report_store.list_schedules(metadata_home, "globex", "r1") == []
    assert report_store.get_run(metadata_home, "acme", "r1", run_id)["row_count"] == 2
    assert report_store.get_run(metadata_home, "globex", "r1", run_id) is None
    assert [d.id for d in report_store.stored_definitions(metadata_home)] == ["r1"]
    assert report_store.delete_report(metadata_home, "acme", "r1")
    assert report_store.list_schedules(metadata_home, "acme", "r1") == []


def test_the_schedule_limit_holds_under_concurrent_creates(metadata_home):
    report_store.create_report(metadata_home, ReportDefinition.model_validate(REPORT))
    for i in range(MAX_SCHEDULES_PER_TENANT - 2):
        report_store.create_schedule(
            metadata_home, "acme", "r1", ReportSchedule(id=f"s{i}", cadence="daily", recipients=["a@b.example"])
        )
    refused = []

    def create(i: int) -> None:
        try:
            report_store.create_schedule(
                metadata_home, "acme", "r1", ReportSchedule(id=f"c{i}", cadence="daily", recipients=["a@b.example"])
            )
        except report_store.ScheduleLimitError:
            refused.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(report_store.list_schedules(metadata_home, "acme", "r1")) == MAX_SCHEDULES_PER_TENANT
    assert len(refused) == 4


def test_deliveries_oldest_first_and_paged_newest_first(metadata_home):
    base = datetime(2026, 3, 1, 8, tzinfo=UTC)
    for day in range(5):
        due = (base + timedelta(days=day)).isoformat()
        _record(
            metadata_home,
            delivery_id=f"d{day}",
            tenant_id="acme",
            report_id="r1",
            schedule_id="s1",
            due_at=due,
            status="sent",
            sent_at=due,
            rows=day,
        )
    record_failure(metadata_home, "globex", "r1", "s1", "boom")
    assert [d["delivery_id"] for d in deliveries(metadata_home, "acme", "r1")] == ["d0", "d1", "d2", "d3", "d4"]
    page, total = delivery_page(metadata_home, "acme", "r1", "s1", offset=2, limit=2)
    assert total == 5 and [d["delivery_id"] for d in page] == ["d2", "d1"]
    assert [d["status"] for d in deliveries(metadata_home, "globex", "r1", "s1")] == ["failed"]


def test_the_export_queue_holds_under_concurrent_starts(metadata_home):
    request = exports.ExportRequest(tenant_id="acme", dataset="fct_events")
    accepted = []

    def start(i: int) -> None:
        if exports.record(metadata_home, f"e{i}", request, queue_limit=2):
            accepted.append(i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 2
    stored = exports.get_export(metadata_home, "acme", f"e{accepted[0]}")
    assert stored["status"] == "running" and stored["tenant_id"] == "acme"
    assert exports.get_export(metadata_home, "globex", f"e{accepted[0]}") is None
    exports._finish(metadata_home, f"e{accepted[0]}", status="succeeded", rows=3)
    assert exports.get_export(metadata_home, "acme", f"e{accepted[0]}")["rows"] == 3
    assert exports.record(metadata_home, "e-next", request, queue_limit=2)  # a finished export frees its place


@pytest.mark.parametrize("bad", ["acme' OR '1'='1", "acme; DROP TABLE reports"])
def test_values_are_bound_not_spliced(metadata_home, bad):
    report_store.create_report(metadata_home, ReportDefinition.model_validate(REPORT))
    assert report_store.get_report(metadata_home, bad, "r1") is None
    assert "reports" in _tables(metadata_home)
