"""One landing zone built by the CLI on DuckDB and on Spark (what tests/test_spark_build.py compares).

python -m tests.engines_build ROOT      -> ROOT/duckdb, ROOT/spark (homes), ROOT/result.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
HOME_VARS = ("LEADRON_HOME", "LEADRON_WAREHOUSE_PATH", "LEADRON_LANDING_DIR", "DAGSTER_HOME")
# A fixed as-of time (the engagement score decays with it); small Spark settings for a small dataset.
ENGINE_ENV = {
    "LEADRON_AS_OF": "2026-04-01 00:00:00",
    "LEADRON_SPARK_SHUFFLE_PARTITIONS": "1",
    "LEADRON_SPARK_DRIVER_MEMORY": "1g",
}


def cli_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in HOME_VARS and not k.startswith("LEADRON_")}
    return {**env, "LEADRON_HOME": str(home), **ENGINE_ENV, **extra}


def cli(*args: str, env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "leadron_cli.main", *args], capture_output=True, text=True, timeout=1200, env=env
    )
    return {"args": list(args), "returncode": done.returncode, "output": (done.stdout + done.stderr)[-4000:]}


def build_both(root: Path) -> dict:
    generated, duck, spark = root / "generated", root / "duckdb", root / "spark"
    steps = [
        cli("generate", "--out", str(generated), "--events", "3000", "--tenants", "2", "--days", "45",
            "--end", "2026-03-31", "--seed", "11", env=cli_env(root / "unused")),
    ]  # fmt: skip
    # The generated data first, so the hand-made dimension snapshots are each tenant's newest.
    for folder in (generated, FIXTURES / "handmade", FIXTURES / "handmade" / "late"):
        steps.append(cli("import", str(folder), env=cli_env(duck)))
    # The Spark home starts from the same landing zone: the same batches, receipt times and event ids.
    shutil.copytree(duck / "landing", spark / "landing")
    steps.append(cli("run", env=cli_env(duck)))
    steps.append(cli("run", env=cli_env(spark, LEADRON_DBT_TARGET="spark")))
    return {"duckdb": str(duck), "spark": str(spark), "steps": steps}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    (target / "result.json").write_text(json.dumps(build_both(target), indent=2))
