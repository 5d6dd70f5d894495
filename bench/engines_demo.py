"""The demo dataset built on both engines: a full `leadron run`, then a one-day `leadron run --partition`.

    .venv/bin/python bench/engines_demo.py [--input DIR] [--home DIR]

1. Imports the demo input (`leadron demo`'s ~1M events, generated when missing) into one landing zone, and
   copies it so both engines build the same batches.
2. `leadron run` with LEADRON_DBT_TARGET=duckdb, then =spark (dbt-spark's session method, local[*]): the
   whole pipeline, timed from the outside as an operator sees it.
3. `leadron run --partition <last day>` on each: the incremental path (DuckDB delete+insert; Spark
   insert_overwrite of the touched tenant partitions).
4. Every published table compared between the engines, row by row as tests/test_spark_build.py does
   (tests/published_tables.py: doubles to 1e-9 relative, without the run-time columns).

Writes bench/results/engines_demo.{json,md}. Needs the spark extra (`pip install -e '.[spark]'`) and Java 17.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from leadron import landing  # noqa: E402
from leadron.settings import exported, get_settings  # noqa: E402
from tests.cli import home_env  # noqa: E402
from tests.cli import leadron as cli  # noqa: E402
from tests.published_tables import published, same_value  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AS_OF = "2026-12-01 00:00:00"  # fixed: the engagement score decays with it


def leadron(*args: str, home: Path, target: str = "duckdb") -> float:
    """`leadron ARGS` on `home`; wall-clock seconds (a failure stops the bench with the command's output)."""
    env = home_env(home, LEADRON_DBT_TARGET=target, LEADRON_AS_OF=AS_OF)
    started = time.perf_counter()
    done = cli(*args, env=env, timeout=None)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"leadron {' '.join(args)} ({target}) failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return round(seconds, 1)


def compare(duck: Path, spark: Path) -> dict[str, dict]:
    """Rows per published table, and the rows of each engine the other lacks (doubles to 1e-9 relative)."""
    expected, got = published(duck), published(spark)
    out = {}
    for table, (_, mine) in expected.items():
        theirs = got.get(table, (None, []))[1]
        differ = sum(not all(map(same_value, a, b)) for a, b in zip(mine, theirs))
        out[table] = {
            "rows": len(mine),
            "only_duckdb": differ + max(len(mine) - len(theirs), 0),
            "only_spark": differ + max(len(theirs) - len(mine), 0),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(ROOT / ".leadron" / "demo-input"), help="the demo's input folder")
    parser.add_argument("--home", default=str(ROOT / ".leadron-bench-engines"))
    args = parser.parse_args()
    source, home = Path(args.input), Path(args.home)
    if not source.exists():
        leadron("generate", "--out", str(source), home=home / "unused")
    shutil.rmtree(home, ignore_errors=True)
    duck, spark = home / "duckdb", home / "spark"
    leadron("import", str(source), home=duck)
    shutil.copytree(duck / "landing", spark / "landing")
    with exported({"LEADRON_HOME": str(duck)}):
        settings = get_settings()
    days = landing.event_dates(settings)
    with duckdb.connect() as con:
        events = con.execute("SELECT count(*) FROM read_parquet(?)", [landing.event_files(settings, days)]).fetchone()
    last_day = str(days[-1])
    seconds = {
        "duckdb_full": leadron("run", home=duck),
        "spark_full": leadron("run", home=spark, target="spark"),
        "duckdb_day": leadron("run", "--partition", last_day, home=duck),
        "spark_day": leadron("run", "--partition", last_day, home=spark, target="spark"),
    }
    tables = compare(duck, spark)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "landed_events": events[0],
        "day": last_day,
        "seconds": seconds,
        "spark_to_duckdb": {
            "full": round(seconds["spark_full"] / seconds["duckdb_full"], 2),
            "day": round(seconds["spark_day"] / seconds["duckdb_day"], 2),
        },
        "tables": tables,
        "all_equal": all(t["only_duckdb"] == t["only_spark"] == 0 for t in tables.values()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "engines_demo.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# The demo dataset on DuckDB and on Spark (local[*])",
        "",
        f"Measured {result['measured_at']} on {result['cpus']} CPUs; {events[0]:,} landed events; as-of {AS_OF}.",
        "",
        "| `leadron run` | DuckDB s | Spark s | Spark / DuckDB |",
        "|---|---|---|---|",
        f"| full (every landed day) | {seconds['duckdb_full']} | {seconds['spark_full']} | "
        f"{result['spark_to_duckdb']['full']}x |",
        f"| `--partition {last_day}` (incremental) | {seconds['duckdb_day']} | {seconds['spark_day']} | "
        f"{result['spark_to_duckdb']['day']}x |",
        "",
        f"Published tables equal between the engines: **{result['all_equal']}**",
        "",
        "| table | rows | only DuckDB | only Spark |",
        "|---|---|---|---|",
        *(f"| {t} | {v['rows']} | {v['only_duckdb']} | {v['only_spark']} |" for t, v in tables.items()),
    ]
    (RESULTS / "engines_demo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if result["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
