"""Retention of the API log: batches sealed into the landing zone more than LEADRON_RETENTION_API_LOG_DAYS ago
go, with their idempotency-index rows, their status-index entries and the Idempotency-Key responses of the
same age. The landing zone holds every sealed event for good; the log only answers status requests and
recognises retries, which come within minutes, not days."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from filelock import FileLock

from api_stub.ingest_log.schema import connect
from api_stub.ingest_log.status_index import StatusIndex

log = logging.getLogger("leadron.api.store")


def prune_log(log_path: Path, cutoff: datetime, status: StatusIndex) -> dict[str, int]:
    """Drop what was sealed before `cutoff` (an aware UTC time); never a batch the sealer has not landed."""
    stamp = cutoff.isoformat()
    counts = {"batches": 0, "events": 0, "idempotency": 0}
    with FileLock(str(log_path) + ".seal.lock", timeout=120):  # not while a sealer reads the same batches
        con = connect(log_path)
        try:
            (upto,) = con.execute("SELECT max(last_seq) FROM seal_log WHERE sealed_at < ?", (stamp,)).fetchone()
            con.execute("BEGIN IMMEDIATE")
            if upto is not None:
                counts["batches"] = con.execute("DELETE FROM batches WHERE seq <= ?", (upto,)).rowcount
                counts["events"] = con.execute("DELETE FROM events WHERE batch_seq <= ?", (upto,)).rowcount
                con.execute("DELETE FROM seal_log WHERE last_seq < ?", (upto,))
            counts["idempotency"] = con.execute("DELETE FROM idempotency WHERE created_at < ?", (stamp,)).rowcount
            con.execute("COMMIT")
        finally:
            con.close()
    if upto is not None:
        status.drop_through(upto)
    if any(counts.values()):
        log.info("API log retention: dropped %s sealed before %s", counts, stamp)
    return counts
