"""The `leadron` command as an operator runs it, on a home of its own: the tests' and the benches' helper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def leadron(*args: str, env: dict, timeout: float | None = 600) -> subprocess.CompletedProcess:
    """The `leadron` CLI in a subprocess, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its Leadron settings or Dagster instance, for a command on `home`,
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADRON_") and k != "DAGSTER_HOME"}
    return {**env, "LEADRON_HOME": str(home), **extra}
