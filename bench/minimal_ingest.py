"""The ingest reference of bench/ingest_load.py: what the disk and the HTTP stack allow, with no product logic.

    uvicorn bench.minimal_ingest:app --workers N   (MINIMAL_INGEST_DIR: where each worker appends its log)

POST /v1/analytics/events/batch parses the body with orjson, re-encodes each event as a JSON line, appends the
lines to the worker's log and answers 202 once a group fsync covering them returned. No validation, no
idempotency, no status index, no authentication: a ceiling to measure the API against, not a product.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import orjson
from fastapi import FastAPI, Request, Response

_pending: list[tuple[bytes, asyncio.Future]] = []
_wake = asyncio.Event()


def _write_and_sync(fd: int, data: bytes) -> None:
    os.write(fd, data)
    os.fsync(fd)


async def _committer(fd: int) -> None:
    # Group commit: everything queued while the previous fsync ran goes out in one write and one fsync.
    loop = asyncio.get_running_loop()
    while True:
        await _wake.wait()
        _wake.clear()
        batch = _pending[:]
        del _pending[:]
        if not batch:
            continue
        await loop.run_in_executor(None, _write_and_sync, fd, b"".join(data for data, _ in batch))
        for _, done in batch:
            done.set_result(None)


@contextlib.asynccontextmanager
async def _lifespan(_app: FastAPI):
    # Each worker process its own log: MINIMAL_INGEST_DIR/events-<pid>.jsonl.
    path = os.path.join(os.environ.get("MINIMAL_INGEST_DIR", "."), f"events-{os.getpid()}.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    committer = asyncio.create_task(_committer(fd))
    yield
    committer.cancel()
    os.close(fd)


app = FastAPI(lifespan=_lifespan)


@app.post("/v1/analytics/events/batch")
async def batch(request: Request) -> Response:
    events = orjson.loads(await request.body())["events"]
    lines = b"".join(orjson.dumps(event) + b"\n" for event in events)
    done = asyncio.get_running_loop().create_future()
    _pending.append((lines, done))
    _wake.set()
    await done
    return Response(orjson.dumps({"accepted": len(events)}), status_code=202, media_type="application/json")
