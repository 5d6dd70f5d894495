"""Disk a day of events costs after retention: landing zone, warehouse, publication, API log.

    .venv/bin/python bench/disk_per_day.py [--events 200000] [--days 30]

Generates --events over --days (the demo generator), imports and builds them in a scratch LEADRON_HOME, and
ingests 20,000 of the same events through the API's log (writer + sealer, as `leadron serve` does), then
divides each store's bytes by the events it holds. Writes bench/results/disk_per_day.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    seen, total = set(), 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            inode = p.stat().st_ino  # hard-linked Parquet of unchanged months counts once
            if inode not in seen:
                seen.add(inode)
                total += p.stat().st_size
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="leadron-disk-"))
    os.environ["LEADRON_HOME"] = str(scratch / "home")
    import dagster as dg

    from leadron.demo_data import generate
    from leadron.importer import import_folder
    from leadron.settings import get_settings
    from orchestration.runner import run_build

    settings = get_settings()
    generated = generate(
        scratch / "input", events=args.events, tenants=3, seed=5, end=date(2026, 3, 31), days=args.days
    )
    assert import_folder(scratch / "input", settings).ok
    assert run_build(settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING").success
    events = generated.events

    from api_stub.ingest_log.records import Submission, encode_event
    from api_stub.ingest_log.writer import EventStore
    from api_stub.schemas import ApiEventIn

    api_home = scratch / "api-home"
    os.environ["LEADRON_HOME"] = str(api_home)
    api_settings = get_settings()
    store = EventStore(api_settings)
    store.start()
    lines = [json.loads(line) for f in sorted((scratch / "input").glob("events-*.jsonl")) for line in f.open()]
    lines = [e for e in lines if e["tenantId"] == lines[0]["tenantId"]]  # a request holds one tenant's events
    api_events = 0
    for start in range(0, min(20_000, len(lines)), 500):
        chunk = lines[start : start + 500]
        stored = [
            encode_event(
                ApiEventIn.model_validate_json(json.dumps({k: v for k, v in e.items() if k != "tenantId"})),
                e["tenantId"],
                datetime.now(UTC).replace(tzinfo=None),
                "api",
                i,
            )
            for i, e in enumerate(chunk)
        ]
        store.submit(Submission(stored)).result(60)
        api_events += len(stored)
    store.close()
    api_log = size(api_settings.api_events_path.parent)  # the log, its WAL and the status index

    per_event = {
        "landing_zone": size(settings.landing_dir) / events,
        "warehouse_duckdb": size(settings.warehouse_path) / events,
        "publication_3_versions": size(settings.publish_dir) / events,
        "api_log_within_window": api_log / api_events,
    }
    record = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": events,
        "days": args.days,
        "bytes_per_event": {k: round(v, 1) for k, v in per_event.items()},
    }
    out = ROOT / "bench" / "results"
    (out / "disk_per_day.json").write_text(json.dumps(record, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v:,.0f} | {v * 1_000_000 / 2**30:,.2f} |" for k, v in per_event.items())
    (out / "disk_per_day.md").write_text(
        f"# Disk per event after retention\n\nMeasured {record['measured_at']}: {events:,} generated events over "
        f"{args.days} days, imported and built; {api_events:,} of them through the API log.\n\n"
        "| store | bytes per event | GiB per million events |\n|---|---|---|\n" + rows + "\n\n"
        "Kept for good: the landing zone (the raw store everything is rebuilt from). Grows with history: the "
        "warehouse. Bounded: the publication (3 versions, unchanged months hard-linked), the API log "
        "(LEADRON_RETENTION_API_LOG_DAYS of batches).\n"
    )
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
