"""Schemathesis against the served OpenAPI document: no server error, documented status codes,
responses that match their schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.api_server import Server

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
])


def test_schemathesis_finds_no_server_error(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, {"LEADRON_LOG_LEVEL": "WARNING", "LEADRON_RATE_LIMIT": "100000",
                           "LEADRON_RATE_BURST": "100000"}).start()
    try:
        key = server.create_key("acme-corp")
        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert st, "schemathesis is a test dependency"
        proc = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "--header", f"X-API-Key: {key}", "--checks", CHECKS,
             "--max-examples", "25", "--seed", "7", "--max-time", "50", "--no-color"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its cache stays out of the repo
        )
        report = proc.stdout[-4000:]
        assert proc.returncode == 0, report
        assert "generated" in report and "Server error" not in report
    finally:
        server.stop()
    log = (tmp_path / f"server-{server.port}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
