"""`leadron import`: bad files are reported by file, line and reason, and nothing of them lands."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from leadron import landing
from leadron.importer import import_folder, iter_messages
from tests.conftest import FIXTURES

GOOD = {
    "tenantId": "acme-corp",
    "eventId": "e1",
    "eventType": "email_open",
    "leadId": "L1",
    "messageId": "m1",
    "timestamp": "2026-03-02T10:00:00Z",
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def landed_event_rows(settings) -> int:
    return sum(pq.read_metadata(f).num_rows for f in landing.event_files(settings, landing.event_dates(settings)))


def test_bad_event_line_rejects_the_whole_file_with_file_line_and_reason(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "events-a.jsonl", [json.dumps(GOOD), json.dumps(GOOD | {"eventId": "e2"})])
    write_lines(
        folder / "events-b.jsonl",
        [
            json.dumps(GOOD | {"eventId": "e3"}),
            json.dumps(GOOD | {"eventId": "e4", "eventType": "email_opened"}),
            "{not json",
            "",
            json.dumps(GOOD | {"eventId": "e5", "timestamp": "2026-13-01T00:00:00Z"}),
        ],
    )
    report = import_folder(folder, home)
    assert not report.ok
    outcome = {o.file: o for o in report.outcomes}
    assert outcome["events-a.jsonl"].status == "landed" and outcome["events-a.jsonl"].rows == 2
    bad = outcome["events-b.jsonl"]
    assert bad.status == "rejected" and bad.error_count == 3
    assert [(e.line, e.field) for e in bad.errors] == [(2, "eventType"), (3, "body"), (5, "timestamp")]
    assert "Invalid JSON" in bad.errors[1].reason
    messages = list(iter_messages(report))
    assert messages[0] == "REJECTED events-b.jsonl: 3 problem(s); nothing from this file was landed"
    assert messages[1].startswith("  events-b.jsonl:2: eventType: Input should be")
    # Only the good file's two events landed; e3 of the bad file did not.
    assert landed_event_rows(home) == 2


def test_dimension_file_missing_a_column_is_rejected(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "leads.csv").write_text("tenant_id,lead_id,email\nacme-corp,L1,a@b.example\n")
    (folder / "tenants.csv").write_text(
        "tenant_id,name,timezone,extra\nacme-corp,Acme,Mars/Olympus,x\nglobex,G,UTC,y\n"
    )
    report = import_folder(folder, home)
    outcome = {o.file: o for o in report.outcomes}
    leads = outcome["leads.csv"]
    assert leads.status == "rejected"
    assert str(leads.errors[0]) == (
        "leads.csv:1: header: missing required column(s): company, source, "
        "owner_user_id, created_at, status, converted_at"
    )
    tenants = outcome["tenants.csv"]
    assert tenants.status == "rejected"
    assert str(tenants.errors[0]) == "tenants.csv:2: timezone: Value error, unknown IANA timezone 'Mars/Olympus'"
    assert landing.dimension_snapshots(home, "leads") == [] and landing.dimension_snapshots(home, "tenants") == []


def test_duplicate_key_in_a_snapshot_is_rejected(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "teams.csv").write_text("tenant_id,team_id,name\nacme-corp,t1,A\nacme-corp,t2,B\nacme-corp,t1,C\n")
    report = import_folder(folder, home)
    assert str(report.outcomes[0].errors[0]) == (
        "teams.csv:4: tenant_id,team_id: duplicate key ('acme-corp', 't1') (first on line 2)"
    )


def test_same_file_twice_lands_once_and_gzip_is_read(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    lines = [json.dumps(GOOD | {"eventId": f"e{i}"}) for i in range(5)]
    with gzip.open(folder / "events-1.jsonl.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    first = import_folder(folder, home)
    second = import_folder(folder, home)
    assert [o.status for o in first.outcomes] == ["landed"] and first.events_landed == 5
    assert [o.status for o in second.outcomes] == ["skipped"] and "already landed" in second.outcomes[0].detail
    assert landed_event_rows(home) == 5


def test_landing_is_atomic_no_temporaries_left(home):
    report = import_folder(FIXTURES / "handmade", home)
    assert report.ok
    leftovers = list(home.landing_dir.rglob(".tmp-*"))
    assert leftovers == []
    assert [d.isoformat() for d in landing.event_dates(home)] == ["2026-03-02", "2026-03-03", "2026-03-04"]


def test_cli_import_reports_bad_lines_and_exits_nonzero(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_lines(folder / "events-x.jsonl", [json.dumps(GOOD | {"tenantId": "Not A Slug"})])
    proc = subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", "import", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "events-x.jsonl:1: tenantId: String should match pattern" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", "import", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "not a folder" in missing.stderr and "Traceback" not in missing.stderr


def test_a_folder_written_by_hand_in_the_format_imports(home, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(FIXTURES / "handmade", folder, ignore=shutil.ignore_patterns("late", "README.md"))
    report = import_folder(folder, home)
    assert report.ok and report.events_landed == 30
