"""The status endpoint's index: message and execution ids of the API log, by batch and position.

Kept out of the commit on purpose, and log-structured: each catch-up sorts the keys of the batches committed
since the last one (numpy, in C) and writes them as one immutable run file; a lookup binary-searches every run;
when there are more than MAX_RUNS, the two adjacent runs smallest together are merged. No per-event B-tree
insert: the SQLite table this replaced cost 3.4 µs of CPU per event (two ids each), a tenth of the API's CPU
under batch load, on the same cores as the requests. A status request first brings the index up to date
(`catch_up`), so it answers from every event acknowledged before it; a background thread keeps that
catch-up small. The index is derived: lost or removed, it is rebuilt from the log.

Keys are CRC-32s of (tenant, kind, id) and locations `seq << 16 | position`. A lookup checks every line it
reads against the tenant and the id, so a hash collision costs a line read, never a wrong answer.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import zlib
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson
from filelock import FileLock

KINDS = {"message_id": b"m", "workflow_execution_id": b"x"}
POSITION_BITS = 16  # a batch holds at most 65,536 events (1,000 by the API's rule)
MAX_RUNS = 8  # a lookup searches at most this many runs (plus the one a catch-up just wrote)
NO_KEY = -1  # an event without a message id (or execution id) in a refs blob
_RUN = re.compile(r"^run-(\d{12})-(\d{12})\.npy$")


def _prefix(tenant_id: str, column: str) -> int:
    """The CRC-32 of a key's tenant and kind: a key continues it with the id (crc32(a + b) = crc32(b, crc32(a)))."""
    return zlib.crc32(b"\x1f".join((tenant_id.encode(), KINDS[column], b"")))


def key(tenant_id: str, column: str, value: str) -> int:
    return zlib.crc32(value.encode(), _prefix(tenant_id, column))


def event_ref(position: int, tenant_id: str, message_id: str | None, execution_id: str | None) -> tuple[int, int, int]:
    """An event's (position, message key or NO_KEY, execution key or NO_KEY): what the index holds of it."""
    return (
        position,
        NO_KEY if message_id is None else key(tenant_id, "message_id", message_id),
        NO_KEY if execution_id is None else key(tenant_id, "workflow_execution_id", execution_id),
    )


def tenant_refs_blob(tenant_id: str, ids: Iterable[tuple[str | None, str | None]]) -> bytes:
    """refs_blob of one tenant's events, from each event's (message id, execution id): the keys' prefixes
    hashed once, not per event (this runs on every event of every request)."""
    message, execution = _prefix(tenant_id, "message_id"), _prefix(tenant_id, "workflow_execution_id")
    crc32 = zlib.crc32
    values = array("q")
    for position, (m, x) in enumerate(ids):
        if m is not None or x is not None:
            m_key = NO_KEY if m is None else crc32(m.encode(), message)
            values.extend((position, m_key, NO_KEY if x is None else crc32(x.encode(), execution)))
    return values.tobytes()


def refs_blob(refs: list[tuple[int, int, int]]) -> bytes:
    """(position, message key or NO_KEY, execution key or NO_KEY) of a batch's events, as packed int64s: what
    a catch-up reads with numpy, no Python per event."""
    return array("q", [value for ref in refs for value in ref]).tobytes()


def _legacy_refs(status_keys: bytes | None, refs: bytes | None, lines: bytes | None) -> list[tuple[int, int, int]]:
    """The refs of a batch a log wrote before `status_refs`: from its status keys, its ids or its lines."""
    if status_keys is not None:
        return [(p, NO_KEY if m is None else m, NO_KEY if x is None else x) for p, m, x in orjson.loads(status_keys)]
    if refs is not None:
        rows = orjson.loads(refs)
    else:
        rows = []
        for position, line in enumerate(lines.split(b"\n") if lines else []):
            raw = orjson.loads(line)
            rows.append([position, raw["_t"], raw.get("messageId"), raw.get("workflowExecutionId")])
    return [event_ref(*row) for row in rows]


class Run(NamedTuple):
    first: int  # the batches seq first..last are indexed in this run
    last: int
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size


class StatusIndex:
    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.folder = log_path.with_name("status_index")
        self.folder.mkdir(exist_ok=True)
        self._lock = threading.Lock()  # one catch-up at a time in this process; FileLock across processes
        self._file_lock = FileLock(str(self.folder) + ".lock", timeout=60)
        # Reads only the refs of new batches: SQLite's default page cache, not the writer's 128 MiB.
        self._log = sqlite3.connect(log_path, timeout=60, isolation_level=None, check_same_thread=False)
        with self._file_lock:
            for old in log_path.parent.glob("status_index.sqlite*"):  # the SQLite index of earlier versions
                old.unlink(missing_ok=True)

    def _runs(self) -> list[Run]:
        runs = [Run(int(m[1]), int(m[2]), p) for p in self.folder.iterdir() if (m := _RUN.match(p.name))]
        runs.sort(key=lambda run: (run.first, -run.last))  # a wider run before the runs it covers
        # A merge killed between writing its run and removing its inputs leaves runs it covers: drop them.
        kept: list[Run] = []
        for run in runs:
            if kept and run.last <= kept[-1].last:
                run.path.unlink(missing_ok=True)
                continue
            kept.append(run)
        return kept

    def _write(self, first: int, last: int, keys: np.ndarray, locations: np.ndarray) -> Run:
        order = np.lexsort((locations, keys))
        path = self.folder / f"run-{first:012d}-{last:012d}.npy"
        tmp = path.with_name(f".tmp-{path.name}")
        np.save(tmp, np.stack([keys[order], locations[order]]))  # row 0 the keys, contiguous for searchsorted
        os.replace(tmp, path)
        return Run(first, last, path)

    def catch_up(self, limit: int = 2_000) -> int:
        """Index every batch committed before the call (not those committed during it: under steady load
        that chase would never end); returns the ids indexed."""
        indexed = 0
        with self._lock, self._file_lock:
            runs = self._runs()
            last = runs[-1].last if runs else 0
            upto = self._log.execute("SELECT coalesce(max(seq), 0) FROM batches").fetchone()[0]
            while last < upto:
                rows = self._log.execute(
                    "SELECT seq, status_refs FROM batches WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (last, upto, limit),
                ).fetchall()
                end = rows[-1][0] if len(rows) == limit else upto
                blobs = [blob if blob is not None else self._legacy_blob(seq) for seq, blob in rows]
                refs = np.frombuffer(b"".join(blobs), dtype=np.int64).reshape(-1, 3)
                seqs = np.repeat(np.array([seq for seq, _ in rows], dtype=np.int64), [len(b) // 24 for b in blobs])
                locations = seqs << POSITION_BITS | refs[:, 0]
                keys, locations = np.concatenate((refs[:, 1], refs[:, 2])), np.concatenate((locations, locations))
                present = keys != NO_KEY
                runs.append(self._write(last + 1, end, keys[present], locations[present]))
                indexed += int(present.sum())
                last = end
            self._compact(runs)
        return indexed

    def _legacy_blob(self, seq: int) -> bytes:
        row = self._log.execute("SELECT status_keys, refs, lines FROM batches WHERE seq = ?", (seq,)).fetchone()
        return refs_blob(_legacy_refs(*row))

    def _compact(self, runs: list[Run]) -> None:
        """Merge the two adjacent runs smallest together until at most MAX_RUNS are left."""
        while len(runs) > MAX_RUNS:
            sizes = [run.size for run in runs]
            i = min(range(len(runs) - 1), key=lambda j: sizes[j] + sizes[j + 1])
            keys, locations = np.concatenate([np.load(run.path) for run in runs[i : i + 2]], axis=1)
            merged = self._write(runs[i].first, runs[i + 1].last, keys, locations)
            for run in runs[i : i + 2]:
                run.path.unlink()
            runs[i : i + 2] = [merged]

    def lookup(self, tenant_id: str, column: str, value: str) -> list[tuple[int, int]]:
        """(batch seq, position) of the events that may be of a message or an execution (check each)."""
        wanted = key(tenant_id, column, value)
        found: set[int] = set()
        with self._lock, self._file_lock:  # not while a catch-up merges runs away
            for run in self._runs():
                keys, locations = np.load(run.path, mmap_mode="r")
                lo, hi = np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right")
                found.update(int(location) for location in locations[lo:hi])
        mask = (1 << POSITION_BITS) - 1
        return [(location >> POSITION_BITS, location & mask) for location in sorted(found)]

    def drop_through(self, seq: int) -> int:
        """Remove the runs of batches up to `seq` only (retention); returns the runs removed. A run that also
        covers later batches stays: a lookup skips the batches retention removed."""
        with self._lock, self._file_lock:
            gone = [run for run in self._runs() if run.last <= seq]
            for run in gone:
                run.path.unlink()
        return len(gone)

    def close(self) -> None:
        with self._lock:
            self._log.close()
