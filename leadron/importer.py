"""`leadron import DIR`: validate every input file and land it, all of a file or none of it.

A file with any bad line is rejected whole, and each problem is reported as
`<file>:<line>: <field>: <reason>`. A file already landed (same bytes) is skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from leadron import dimensions, landing
from leadron.contract import FileEvent, describe_errors, landing_row
from leadron.retention import remove_stale_partials
from leadron.settings import Settings

MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True)
class LineError:
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


@dataclass
class FileOutcome:
    file: str
    kind: str
    status: str  # landed | skipped | rejected
    rows: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    detail: str = ""


@dataclass
class ImportReport:
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status != "rejected" for o in self.outcomes)

    @property
    def events_landed(self) -> int:
        return sum(o.rows for o in self.outcomes if o.kind == "events" and o.status == "landed")


class FileRejected(Exception):
    def __init__(self, errors: list[LineError], count: int):
        super().__init__(f"{count} error(s)")
        self.errors, self.count = errors, count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


class _Errors:
    def __init__(self, file: str):
        self.file, self.items, self.count = file, [], 0

    def add(self, line: int, field: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(LineError(self.file, line, field, reason))

    def raise_if_any(self) -> None:
        if self.count:
            raise FileRejected(self.items, self.count)


def read_event_file(path: Path, settings: Settings, received_at: datetime) -> pa.Table:
    """Validate an events JSON Lines file; return its rows or raise FileRejected."""
    errors = _Errors(path.name)
    rows: list[dict] = []
    start = settings.partition_start
    try:
        with _open_bytes(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue  # blank lines (a trailing newline) carry nothing
                try:
                    event = FileEvent.model_validate_json(raw)
                except ValidationError as exc:
                    for detail in describe_errors(exc):
                        errors.add(number, detail["field"], detail["issue"])
                    continue
                row = landing_row(event, event.tenantId, received_at, source_line=number)
                if row["event_date"] < start:
                    errors.add(number, "timestamp", f"before the first partition day LEADRON_PARTITION_START={start}")
                    continue
                rows.append(row)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        errors.add(0, "file", f"cannot be read: {exc}")
    errors.raise_if_any()
    schema = pa.schema([f for f in landing.EVENT_SCHEMA if f.name not in ("source", "batch_id")])
    return pa.Table.from_pylist(rows, schema=schema)


def read_dimension_file(path: Path, name: str) -> pa.Table:
    """Validate a dimension CSV snapshot; return its rows or raise FileRejected."""
    model, key_columns = dimensions.DIMENSIONS[name]
    wanted = dimensions.columns(name)
    errors = _Errors(path.name)
    rows: list[dict] = []
    seen: dict[tuple, int] = {}
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in wanted if c not in header]
            if missing:
                errors.add(1, "header", f"missing required column(s): {', '.join(missing)}")
                errors.raise_if_any()
            for record in reader:
                number = reader.line_num
                try:
                    row = model.model_validate({c: record[c] for c in wanted}).model_dump()
                except ValidationError as exc:
                    for detail in describe_errors(exc):
                        errors.add(number, detail["field"], detail["issue"])
                    continue
                key = tuple(row[c] for c in key_columns)
                if key in seen:
                    errors.add(number, ",".join(key_columns), f"duplicate key {key} (first on line {seen[key]})")
                    continue
                seen[key] = number
                rows.append(row)
    except UnicodeDecodeError as exc:
        errors.add(0, "file", f"is not UTF-8: {exc.reason} at byte {exc.start}")
    except csv.Error as exc:
        errors.add(0, "file", f"is not valid CSV: {exc}")
    errors.raise_if_any()
    return pa.Table.from_pylist(rows, schema=dimensions.arrow_schema(name))


def _classify(path: Path) -> tuple[str, str | None]:
    name = path.name
    if name.startswith("events") and (name.endswith(".jsonl") or name.endswith(".jsonl.gz")):
        return "events", None
    stem = name[: -len(".csv")] if name.endswith(".csv") else None
    if stem in dimensions.DIMENSIONS:
        return "dimension", stem
    return "ignored", None


def discover(folder: Path) -> list[tuple[Path, str, str | None]]:
    """Input files in landing order: dimensions first (documented order), then events by name."""
    files = [(p, *_classify(p)) for p in sorted(folder.iterdir()) if p.is_file()]
    order = {name: i for i, name in enumerate(dimensions.DIMENSIONS)}
    dims = sorted((f for f in files if f[1] == "dimension"), key=lambda f: order[f[2]])
    return dims + [f for f in files if f[1] == "events"] + [f for f in files if f[1] == "ignored"]


EVENT_ROWS_PER_BATCH = 2_000_000  # landed together: one rename, one fsync pass


def _validate(
    job: tuple[Path, str, str | None, Settings, datetime],
) -> tuple[pa.Table | None, tuple[list[LineError], int] | None]:
    # Runs in a worker process: returns plain values (a custom exception would not unpickle).
    path, kind, name, settings, received_at = job
    try:
        if kind == "events":
            table = read_event_file(path, settings, received_at)
            return table.append_column("source", pa.array([f"file:{path.name}"] * table.num_rows, pa.string())), None
        return read_dimension_file(path, name), None
    except FileRejected as exc:
        return None, (exc.errors, exc.count)


def import_folder(
    folder: Path,
    settings: Settings,
    progress: Callable[[FileOutcome], None] = lambda o: None,
    workers: int | None = None,
) -> ImportReport:
    """Validate every input file (in parallel processes) and land the valid ones.

    Valid event files are landed together in batches of up to EVENT_ROWS_PER_BATCH rows;
    each batch appears in one atomic rename, so a file is never half-landed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    # One cleanup for every writer: only what is older than any write takes, so a sealer writing now is safe.
    remove_stale_partials(settings)
    report = ImportReport()
    received_at = datetime.now(UTC).replace(tzinfo=None)
    jobs = []
    already = landing.landed_files(settings)
    for path, kind, name in discover(folder):
        if kind == "ignored":
            _emit(report, progress, FileOutcome(path.name, kind, "skipped", detail="not an input file name; ignored"))
            continue
        digest = _sha256(path)
        if landed := already.get(digest):
            _emit(
                report,
                progress,
                FileOutcome(path.name, kind, "skipped", detail=f"already landed as {Path(landed).name}"),
            )
            continue
        jobs.append((path, kind, name, digest))
    pending: list[tuple[FileOutcome, str, pa.Table]] = []

    def flush() -> None:
        if not pending:
            return
        batch = landing.land_events(settings, pa.concat_tables([t for _, _, t in pending]), source="file")
        landing.record_landed(settings, [(d, o.file, "events", t.num_rows, batch.path) for o, d, t in pending])
        for outcome, _digest, _table in pending:
            outcome.detail = str(batch.path)
            _emit(report, progress, outcome)
        pending.clear()

    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = pool.map(_validate, [(p, k, n, settings, received_at) for p, k, n, _ in jobs])
        for (path, kind, name, digest), (table, rejected) in zip(jobs, results):
            if rejected is not None:
                _emit(
                    report,
                    progress,
                    FileOutcome(path.name, kind, "rejected", errors=rejected[0], error_count=rejected[1]),
                )
            elif kind == "dimension":
                landed_path = landing.land_dimension(settings, name, table)
                landing.record_landed(settings, [(digest, path.name, kind, table.num_rows, landed_path)])
                _emit(
                    report,
                    progress,
                    FileOutcome(path.name, kind, "landed", rows=table.num_rows, detail=str(landed_path)),
                )
            else:
                progress(FileOutcome(path.name, kind, "validated", rows=table.num_rows))
                pending.append((FileOutcome(path.name, kind, "landed", rows=table.num_rows), digest, table))
                if sum(t.num_rows for _, _, t in pending) >= EVENT_ROWS_PER_BATCH:
                    flush()
    flush()
    return report


def _emit(report: ImportReport, progress: Callable[[FileOutcome], None], outcome: FileOutcome) -> None:
    report.outcomes.append(outcome)
    progress(outcome)


def iter_messages(report: ImportReport) -> Iterator[str]:
    for o in report.outcomes:
        if o.status == "rejected":
            yield f"REJECTED {o.file}: {o.error_count} problem(s); nothing from this file was landed"
            for err in o.errors:
                yield f"  {err}"
            if o.error_count > len(o.errors):
                yield f"  ... and {o.error_count - len(o.errors)} more"
