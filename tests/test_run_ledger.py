"""The run ledger alone (no Dagster run): what a run read becomes processed only when it publishes."""

from __future__ import annotations

from datetime import date

import duckdb

from leadron import run_ledger
from leadron.importer import import_folder
from orchestration.runner import pending_window
from tests.conftest import FIXTURES


def test_what_a_run_read_is_processed_only_once_it_published(home):
    import_folder(FIXTURES / "handmade", home)
    landed = run_ledger.landed(home)
    events = [i for i in landed if i.event_date is not None]
    assert {i.event_date for i in events} == {date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)}
    assert all(i.path.startswith("events/batch=") for i in events)
    with duckdb.connect(str(home.warehouse_path)) as con:
        first = run_ledger.pending(con, home)
        assert first.first_run and first.items == landed
        assert pending_window(home, first) == (date(2026, 3, 2), date(2026, 3, 4))
        run_ledger.record_loaded(con, "nothing-landed", [])  # a run of a day with no landed folder
        # A killed run: it read the first day, never published. Still pending.
        run_ledger.record_loaded(con, "killed", events[:1])
        assert run_ledger.pending(con, home).items == landed
        # A published run that read everything: nothing pending, and the killed run's rows are gone.
        run_ledger.record_loaded(con, "published", landed)
        assert run_ledger.mark_processed(con, "published") == len(landed)
        done = run_ledger.pending(con, home)
        assert done.items == [] and not done.first_run
        assert pending_window(home, done) is None
        assert con.execute(f"SELECT count(*) FROM {run_ledger.LOADED}").fetchone()[0] == 0
    import_folder(FIXTURES / "handmade" / "late", home)
    with duckdb.connect(str(home.warehouse_path)) as con:
        late = run_ledger.pending(con, home)
    assert late.days == [date(2026, 3, 2)] and late.dimensions == []
    assert pending_window(home, late) == (date(2026, 3, 2), date(2026, 3, 2))
    assert late.describe() == ["2026-03-02: 1 landed batch(es) of its events not yet processed"]


def test_a_new_dimension_snapshot_alone_is_pending_work(home):
    import_folder(FIXTURES / "handmade", home)
    with duckdb.connect(str(home.warehouse_path)) as con:
        run_ledger.record_loaded(con, "r1", run_ledger.landed(home))
        run_ledger.mark_processed(con, "r1")
    (home.home / "users").mkdir()
    renamed = (FIXTURES / "handmade" / "users.csv").read_text().replace("Ada Rep", "Ada Lovelace")
    (home.home / "users" / "users.csv").write_text(renamed)
    import_folder(home.home / "users", home)
    with duckdb.connect(str(home.warehouse_path)) as con:
        pending = run_ledger.pending(con, home)
    assert pending.dimensions == ["users"] and pending.days == []
    # The models rebuild from all history; the window is the newest landed day.
    assert pending_window(home, pending) == (date(2026, 3, 4), date(2026, 3, 4))
