"""`leadron serve`: the API under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import logging

import uvicorn

from orchestration.settings import get_settings


def app_factory():
    from api_stub.app import create_app

    return create_app(get_settings())


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    settings = get_settings()
    settings.ensure_dirs()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run("api_stub.server:app_factory", factory=True, host=host, port=port, workers=workers,
                loop="uvloop", http="httptools", access_log=False, log_level=settings.log_level.lower(),
                timeout_graceful_shutdown=10)
