"""The demo generator: deterministic, in the input format, realistic enough to exercise every rule."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

from leadron.demo_data import generate
from leadron.importer import import_folder


def digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate(tmp_path / "a", events=5_000, tenants=2, seed=3, end=date(2026, 5, 1), days=60)
    b = generate(tmp_path / "b", events=5_000, tenants=2, seed=3, end=date(2026, 5, 1), days=60)
    generate(tmp_path / "c", events=5_000, tenants=2, seed=4, end=date(2026, 5, 1), days=60)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    assert a.events == b.events


def test_generated_folder_imports_cleanly_and_looks_like_email(tmp_path, home):
    result = generate(tmp_path / "g", events=20_000, tenants=4, seed=5, end=date(2026, 5, 1), days=120)
    assert 15_000 <= result.events <= 25_000  # "about N"
    report = import_folder(tmp_path / "g", home)
    assert report.ok, [str(e) for o in report.outcomes for e in o.errors]
    events = [json.loads(line) for p in sorted((tmp_path / "g").glob("events-*.jsonl")) for line in p.open()]
    types = Counter(e["eventType"] for e in events)
    assert set(types) == {
        "email_sent",
        "email_open",
        "link_click",
        "email_reply",
        "email_bounce",
        "form_submission",
        "page_visit",
    }
    ids = Counter((e["tenantId"], e["eventId"]) for e in events)
    dup_share = sum(n - 1 for n in ids.values()) / len(events)
    assert 0.003 < dup_share < 0.008  # about 0.5% exact re-deliveries
    tenants = Counter(e["tenantId"] for e in events).most_common()
    assert tenants[0][1] > 2 * tenants[-1][1]  # Zipf-sized tenants
    bounces = Counter(e.get("bounceType") for e in events if e["eventType"] == "email_bounce")
    assert bounces["hard"] > 0 and bounces["soft"] > 0
    zones = {r["tenant_id"]: ZoneInfo(r["timezone"]) for r in csv.DictReader((tmp_path / "g" / "tenants.csv").open())}
    local_sends = [
        datetime.fromisoformat(e["timestamp"]).astimezone(zones[e["tenantId"]])
        for e in events
        if e["eventType"] == "email_sent"
    ]
    assert all(t.weekday() < 5 and 9 <= t.hour < 18 for t in local_sends)  # business days and hours, tenant time
    late = sum(
        1
        for p in (tmp_path / "g").glob("events-*.jsonl")
        for line in p.open()
        if json.loads(line)["timestamp"][:10] < p.stem.removeprefix("events-")
    )
    assert late > 0  # events delivered in a later day's file
