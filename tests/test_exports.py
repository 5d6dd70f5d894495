"""Publication and exports: what readers may read, every format, isolation, injection, PII, S3, BI readers."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pandas as pd
import pytest

from leadron.exports import ExportError, ExportRequest, download_url, get_export, run_export
from leadron.publish import current_manifest, publish, published_copy
from leadron_cli.demo_mail import free_port
from tests.conftest import build, query, use_home


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from leadron.demo_data import generate
    from leadron.importer import import_folder

    root = tmp_path_factory.mktemp("exports")
    with pytest.MonkeyPatch.context() as mp:
        settings = use_home(mp, root / "home")
        generate(root / "input", events=6_000, tenants=2, seed=3, end=date(2026, 2, 28), days=45)
        assert import_folder(root / "input", settings).ok
        build(settings)
        tenants = [t for (t,) in query(settings, "SELECT DISTINCT tenant_id FROM marts.mart_kpis_daily ORDER BY 1")]
        yield settings, tenants, mp


def published(settings, sql: str, params=None):
    with duckdb.connect(str(published_copy(settings.publish_dir)), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_the_build_publishes_every_mart_as_parquet_and_a_duckdb_copy(built):
    settings, tenants, _ = built
    manifest = current_manifest(settings.publish_dir)
    marts = {
        t for (t,) in query(settings, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'")
    }
    assert set(manifest["tables"]) == marts and "mart_lead_scores" in marts
    fresh = query(settings, "SELECT max(received_at) FROM staging.stg_leadron__events")[0][0]
    assert manifest["data_freshness_watermark"] == fresh.isoformat()
    for mart, entry in manifest["tables"].items():
        rows = query(settings, f'SELECT count(*) FROM marts."{mart}"')[0][0]
        assert entry["rows"] == rows == published(settings, f'SELECT count(*) FROM "{mart}"')[0][0]
        assert [c["name"] for c in entry["schema"]][:2] == [c[0] for c in query(settings, f'DESCRIBE marts."{mart}"')][
            :2
        ]
        by_tenant = dict(query(settings, f'SELECT tenant_id, count(*) FROM marts."{mart}" GROUP BY 1'))
        files_by_tenant: dict = {}
        for f in entry["files"]:
            files_by_tenant[f["tenant_id"]] = files_by_tenant.get(f["tenant_id"], 0) + f["rows"]
        assert files_by_tenant == by_tenant
        for f in entry["files"]:
            path = settings.publish_dir / "current" / f["path"]
            assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0] == f["rows"]


def test_a_reader_keeps_its_copy_while_a_new_one_is_swapped_in(built, tmp_path):
    settings, _, _ = built
    target = tmp_path / "published"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        first = publish(con, target)
        old_reader = duckdb.connect(str(published_copy(target)), read_only=True)
        assert old_reader.execute("SELECT version FROM _publication").fetchone()[0] == first.version
        later = [publish(con, target) for _ in range(3)]
    # The old reader's version folder has been pruned (3 kept); its open file still answers.
    assert not first.folder.exists()
    assert old_reader.execute("SELECT count(*) FROM mart_kpis_daily").fetchone()[0] == first.tables["mart_kpis_daily"]
    old_reader.close()
    with duckdb.connect(str(published_copy(target)), read_only=True) as new_reader:
        assert new_reader.execute("SELECT version FROM _publication").fetchone()[0] == later[-1].version
    assert os.readlink(target / "current") == f"versions/{later[-1].version}"
    assert sorted(p.name for p in (target / "versions").iterdir()) == sorted(p.version for p in later)


def test_a_publication_rewrites_only_the_partitions_that_changed(built, tmp_path):
    settings, tenants, _ = built
    a, b = tenants
    warehouse, target = tmp_path / "warehouse.duckdb", tmp_path / "published"
    shutil.copyfile(settings.warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        first = publish(con, target)
        # One tenant's KPI row and one event day (every tenant's month folder of it is rewritten).
        con.execute("UPDATE marts.mart_kpis_daily SET sent = sent + 1 WHERE tenant_id = ? AND kpi_date = "
                    "(SELECT min(kpi_date) FROM marts.mart_kpis_daily WHERE tenant_id = ?)", [a, a])  # fmt: skip
        day = con.execute("SELECT min(event_date) FROM marts.fct_events WHERE tenant_id = ?", [b]).fetchone()[0]
        con.execute("DELETE FROM marts.fct_events WHERE tenant_id = ? AND event_date = ?", [b, day])
        second = publish(con, target)
        con.execute(f"ATTACH '{second.folder / 'marts.duckdb'}' AS publication (READ_ONLY)")
        for mart in first.tables:  # the new version holds exactly the warehouse's rows
            live, copy = f'marts."{mart}"', f'publication.main."{mart}"'
            for one, other in ((live, copy), (copy, live)):
                query_ = f"SELECT count(*) FROM (FROM {one} EXCEPT ALL FROM {other})"
                assert con.execute(query_).fetchone()[0] == 0, (mart, one)
        con.execute("DETACH publication")

    def files(version, mart, tenant):
        return sorted((version.folder / "parquet" / mart / f"tenant_id={tenant}").rglob("*.parquet"))

    def same(mart, tenant, month=None):
        pairs = list(zip(files(first, mart, tenant), files(second, mart, tenant), strict=True))
        pairs = [(x, y) for x, y in pairs if month is None or f"_month={month}" in str(x)]
        assert pairs
        return {os.path.samefile(x, y) for x, y in pairs}

    assert same("mart_kpis_daily", b) == {True}  # unchanged tenant: hard links to the previous version
    assert same("mart_kpis_daily", a) == {False}
    assert same("mart_lead_engagement", a) == same("mart_lead_engagement", b) == {True}
    month = day.strftime("%Y-%m")
    assert same("fct_events", a, month) == {False}
    other_months = {p.parent.name for p in files(first, "fct_events", a)} - {f"event_date_month={month}"}
    assert other_months and all(same("fct_events", a, m.split("=")[1]) == {True} for m in other_months)
    kpis = second.folder / "parquet" / "mart_kpis_daily" / f"tenant_id={a}"
    published_sent = duckdb.sql(f"SELECT sum(sent) FROM read_parquet('{kpis}/*.parquet')").fetchall()[0][0]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert (
            published_sent
            == con.execute("SELECT sum(sent) FROM marts.mart_kpis_daily WHERE tenant_id = ?", [a]).fetchone()[0]
        )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "xlsx"])
def test_every_format_round_trips_with_only_the_tenants_rows(built, fmt):
    settings, tenants, _ = built
    a, b = tenants
    request = ExportRequest(tenant_id=a, dataset="mart_kpis_daily", format=fmt, start=date(2026, 2, 1))
    result = run_export(settings, request)
    expected = published(
        settings,
        "SELECT kpi_date, sent, delivered, replied, open_rate FROM mart_kpis_daily "
        "WHERE tenant_id = ? AND kpi_date >= ? ORDER BY kpi_date",
        [a, date(2026, 2, 1)],
    )
    reader = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "xlsx": pd.read_excel,
    }[fmt]
    frame = reader(result.path)
    assert result.rows == len(expected) == len(frame) > 0
    assert set(frame["tenant_id"]) == {a}
    got = [
        (
            pd.Timestamp(r.kpi_date).date(),
            int(r.sent),
            int(r.delivered),
            int(r.replied),
            None if pd.isna(r.open_rate) else round(float(r.open_rate), 9),
        )
        for r in frame.itertuples()
    ]
    assert got == [(d, s, dl, r, None if o is None else round(o, 9)) for d, s, dl, r, o in expected]
    # Another tenant cannot see this export.
    assert get_export(settings, a, result.export_id)["rows"] == result.rows
    assert get_export(settings, b, result.export_id) is None


def test_bad_requests_name_the_field(built):
    settings, tenants, _ = built
    with pytest.raises(ExportError, match="^dataset: unknown dataset 'marts.mart_kpis_daily; --'"):
        run_export(settings, ExportRequest(tenant_id=tenants[0], dataset="marts.mart_kpis_daily; --"))
    with pytest.raises(ExportError, match="^team_id: dataset mart_kpis_daily cannot be filtered by team_id"):
        run_export(settings, ExportRequest(tenant_id=tenants[0], dataset="mart_kpis_daily", team_id="t1"))
    with pytest.raises(ExportError, match="^start: dataset mart_sequence_steps has no date"):
        run_export(settings, ExportRequest(tenant_id=tenants[0], dataset="mart_sequence_steps", start=date(2026, 1, 1)))
    with pytest.raises(ValueError, match="tenant_id"):
        ExportRequest(tenant_id="../other", dataset="mart_kpis_daily")


def test_filters_apply_and_values_are_bound(built):
    settings, tenants, _ = built
    (workflow,) = published(
        settings,
        "SELECT workflow_id FROM mart_email_performance_daily WHERE tenant_id = ? ORDER BY workflow_id LIMIT 1",
        [tenants[0]],
    )[0]
    result = run_export(
        settings,
        ExportRequest(
            tenant_id=tenants[0], dataset="mart_email_performance_daily", workflow_id=workflow, format="parquet"
        ),
    )
    frame = pd.read_parquet(result.path)
    assert (
        set(frame["workflow_id"]) == {workflow}
        and len(frame)
        == published(
            settings,
            "SELECT count(*) FROM mart_email_performance_daily WHERE tenant_id = ? AND workflow_id = ?",
            [tenants[0], workflow],
        )[0][0]
    )
    hostile = run_export(
        settings,
        ExportRequest(tenant_id=tenants[0], dataset="mart_email_performance_daily", workflow_id="x' OR '1'='1"),
    )
    assert hostile.rows == 0


def test_raw_events_hide_personal_fields_unless_asked(built):
    settings, tenants, _ = built
    hidden = pd.read_parquet(
        run_export(
            settings,
            ExportRequest(tenant_id=tenants[0], dataset="raw_events", format="parquet", start=date(2026, 2, 20)),
        ).path
    )
    shown = pd.read_parquet(
        run_export(
            settings,
            ExportRequest(
                tenant_id=tenants[0], dataset="raw_events", format="parquet", start=date(2026, 2, 20), include_pii=True
            ),
        ).path
    )
    assert len(hidden) == len(shown) > 0 and set(hidden["tenant_id"]) == {tenants[0]}
    with_agent = shown["user_agent"].notna()
    assert with_agent.any()
    import hashlib

    expected = [hashlib.sha256(v.encode()).hexdigest() for v in shown.loc[with_agent, "user_agent"]]
    assert hidden.loc[with_agent, "user_agent"].tolist() == expected


def test_upload_to_s3_compatible_storage_with_a_signed_url(built, monkeypatch):
    """A real moto server on 127.0.0.1: the file is uploaded and the signed URL downloads it."""
    import boto3
    from moto.server import ThreadedMotoServer

    settings, tenants, _ = built
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for key, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LEADRON_S3_BUCKET": "leadron-exports",
            "LEADRON_S3_ENDPOINT_URL": endpoint,
            "LEADRON_S3_URL_TTL": "2",
        }.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="leadron-exports")
        from leadron.settings import get_settings

        settings = get_settings()
        result = run_export(
            settings, ExportRequest(tenant_id=tenants[1], dataset="mart_activity_daily"), export_id="exp_s3"
        )
        assert result.object_key == f"{tenants[1]}/{result.path.name}"
        stored = get_export(settings, tenants[1], "exp_s3")
        # Only the object key is stored: a signed URL in the metadata store would be a credential at rest.
        assert stored["object_key"] == result.object_key and stored["url"] is None
        assert "Signature" not in json.dumps(stored)
        url = download_url(settings, stored)
        assert url and url.startswith(endpoint) and "Signature" in url
        response = httpx.get(url)
        assert response.status_code == 200 and response.content == result.path.read_bytes()
        listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="leadron-exports")["Contents"]
        assert [o["Key"] for o in listed] == [f"{tenants[1]}/{result.path.name}"]
        # Time-limited: the signed expiry is the TTL from the request (moto does not enforce expiry, so it is read
        # here).
        from urllib.parse import parse_qs, urlparse

        expires = int(parse_qs(urlparse(url).query)["Expires"][0])
        assert abs(expires - (time.time() + 2)) < 5
    finally:
        server.stop()


def test_a_bi_reader_works_while_a_pipeline_run_writes(built):
    """SQLAlchemy through duckdb-engine on the published copy, as Superset or Metabase connect, queried in a
    loop during a real build; afterwards a new connection sees the new publication."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    settings, tenants, _ = built
    url = f"duckdb:///{published_copy(settings.publish_dir)}"
    engine = create_engine(url, connect_args={"read_only": True}, poolclass=NullPool)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT version FROM _publication")).scalar()
    reads, errors, done = [], [], threading.Event()

    def read_in_a_loop() -> None:
        # The reader runs in a thread and the build in this one (Dagster's objects stay in their thread).
        while not done.is_set():
            try:
                with engine.connect() as conn:
                    reads.append(
                        conn.execute(
                            text("SELECT count(*) FROM mart_kpis_daily WHERE tenant_id = :t"), {"t": tenants[0]}
                        ).scalar()
                    )
            except Exception as error:  # noqa: BLE001 - any failure of the reader is the finding
                errors.append(repr(error))
            time.sleep(0.05)

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        outcome = build(settings)
    finally:
        done.set()
        reader.join()
    assert outcome.success and not errors and len(reads) > 10 and min(reads) > 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM _publication")).scalar() > before


def test_a_failing_data_test_blocks_the_publication(built):
    """A duplicated event and one without an id kept outside the run's window: a one-day run's tests read the rows
    it wrote and pass; with every row tested (as the scheduled daily build does) the uniqueness and not-null tests
    fail, the dbt step fails and the publication (downstream of every mart) does not run; readers keep the last
    good version."""
    from orchestration.runner import run_build

    settings, _, _ = built
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "INSERT INTO staging.stg_leadron__events SELECT * FROM staging.stg_leadron__events "
            "WHERE event_date = (SELECT min(event_date) FROM staging.stg_leadron__events) LIMIT 1"
        )
        con.execute(
            "INSERT INTO staging.stg_leadron__events SELECT * REPLACE (NULL AS event_id) "
            "FROM staging.stg_leadron__events "
            "WHERE event_date = (SELECT min(event_date) FROM staging.stg_leadron__events) LIMIT 1"
        )
    last = query(settings, "SELECT max(event_date) FROM staging.stg_leadron__events")[0][0]
    window = run_build(settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING", days=(last, last))
    assert window.success and not window.failed_checks
    before = current_manifest(settings.publish_dir)["version"]
    outcome = run_build(
        settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING", days=(last, last), full_tests=True
    )
    assert not outcome.success
    assert any("unique_combination_stg_leadron__events" in c for c in outcome.failed_checks)
    assert any("not_null_columns_stg_leadron__events" in c for c in outcome.failed_checks)
    assert current_manifest(settings.publish_dir)["version"] == before
    with duckdb.connect(str(settings.warehouse_path)) as con:  # leave the module's warehouse clean
        con.execute(
            "CREATE OR REPLACE TABLE staging.stg_leadron__events AS "
            "SELECT DISTINCT * FROM staging.stg_leadron__events WHERE event_id IS NOT NULL"
        )


def test_export_job_runs_through_dagster(built):
    from orchestration.defs.exports.jobs import export_dataset

    settings, tenants, _ = built
    result = export_dataset.execute_in_process(
        run_config={
            "ops": {
                "write_export": {
                    "config": {
                        "tenant_id": tenants[0],
                        "dataset": "mart_lead_scores",
                        "format": "jsonl",
                        "export_id": "job-export-1",
                    }
                }
            }
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    stored = get_export(settings, tenants[0], "job-export-1")
    lines = Path(stored["path"]).read_text().splitlines()
    assert (
        stored["status"] == "succeeded"
        and stored["rows"]
        == len(lines)
        == published(settings, "SELECT count(*) FROM mart_lead_scores WHERE tenant_id = ?", [tenants[0]])[0][0]
    )
    assert {json.loads(line)["tenant_id"] for line in lines} == {tenants[0]}
