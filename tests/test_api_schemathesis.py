"""Schemathesis against the served OpenAPI document, on a warehouse built from generated data: no server
error, documented status codes, responses that match their schemas, negative data rejected, and every read
replayed with another tenant's key (tests/schemathesis_hooks.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api_server import Server
from tests.conftest import query

pytestmark = pytest.mark.slow  # left out of `make test-quick`

# Every check schemathesis has (positive data accepted, negative data rejected, status codes, content types,
# schemas, headers, unsupported methods, ...) plus the hooks' replay with another tenant's key.
CHECKS = "all"
RULES_KEY = "x-leadron-422-rules"


def write_config(openapi: dict, folder: Path) -> Path:
    """schemathesis.toml: a schema-valid request may get 422 only from an operation whose document names rules
    a JSON schema cannot state (between fields, or set by the deployment); everywhere else it must pass."""
    blocks = []
    for operations in openapi["paths"].values():
        for operation in operations.values():
            if operation.get(RULES_KEY):
                assert all(rule in operation["responses"]["422"]["description"] for rule in operation[RULES_KEY])
                blocks.append(
                    f'[[operations]]\ninclude-operation-id = "{operation["operationId"]}"\n'
                    "checks.positive_data_acceptance.expected-statuses = "
                    '["2xx", "3xx", "401", "403", "404", "409", "422", "429"]\n'
                )
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(blocks))
    return path


def test_schemathesis_all_checks_pass(generated_build, tmp_path):
    settings, _ = generated_build
    home = tmp_path / "home"
    shutil.copytree(settings.home, home, symlinks=True)
    server = Server(
        home, {"LEADRON_LOG_LEVEL": "WARNING", "LEADRON_RATE_LIMIT": "100000", "LEADRON_RATE_BURST": "100000"}
    ).start()
    try:
        [(tenant, lead)] = query(
            settings,
            "SELECT tenant_id, lead_id FROM marts.fct_events WHERE lead_id IS NOT NULL "
            "GROUP BY ALL ORDER BY count(*) DESC, 2 LIMIT 1",
        )
        key = server.create_key(tenant)
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PYTHONPATH": str(Path.cwd()),
            "LEADRON_OTHER_KEY": server.create_key("zz-no-data"),
            "LEADRON_REAL_LEAD": lead,
            "LEADRON_DATA_FROM": "2026-01-01",
            "LEADRON_DATA_TO": "2026-03-31",
        }
        config = write_config(httpx.get(f"{server.url}/openapi.json").json(), tmp_path)
        st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert st, "schemathesis is a test dependency"
        proc = subprocess.run(
            [
                st,
                "--config-file",
                str(config),
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"X-API-Key: {key}",
                "--checks",
                CHECKS,
                "--max-examples",
                "8",
                "--seed",
                "7",
                "--max-time",
                "40",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            cwd=tmp_path,
            env=env,  # its cache stays out of the repo
        )
        report = proc.stdout[-6000:]
        assert proc.returncode == 0, report
        assert "generated" in report and "Server error" not in report
    finally:
        server.stop()
    log = (tmp_path / f"server-{server.port}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
