"""`leadron run` re-derives what landed since the last successful run, and a run killed at a random moment
(SIGKILL during the raw load, dbt or the publication) followed by `leadron run` publishes exactly the marts of
an uninterrupted build.

Two homes share one landing zone (copied, so receipt times and event ids are the same): the reference builds
everything in one run; the other builds the hand-made fixture, then the late files land and three runs are
killed — one in each phase, at a random point of it — before a last `leadron run` that must finish the work.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import home_env, leadron
from tests.conftest import FIXTURES
from tests.published_tables import published, same_value

pytestmark = pytest.mark.slow

ENV = {"LEADRON_AS_OF": "2026-04-08 00:00:00"}  # the engagement score decays with the as-of time
# Where a run is killed: after a line of its output containing the marker, and a random part of the phase.
PHASES = {
    "raw load": "loading landed events of",
    "dbt": "Running dbt command",
    "publication": "publishing the marts under",
}
# The longest random delay after a phase's marker: the raw load and the dimension loads after it take ~0.4 s
# here; this fixture's publication ~0.2 s (measured), and a kill after it would find the run done.
DELAY_S = {"raw load": 0.2, "publication": 0.05}


def run(home: Path, *args: str) -> str:
    done = leadron("run", *args, env=home_env(home, **ENV), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def killed_run(home: Path, phase: str, rng: random.Random) -> str:
    """`leadron run` killed (its whole process group: dbt too) at a random moment of `phase`, after its marker.

    For the dbt phase the moment is a random dbt node's start; otherwise a random delay of up to DELAY_S."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadron_cli.main", "run"],
        env=home_env(home, **ENV),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    marker = PHASES[phase]
    seen, delay, node = [], rng.uniform(0, DELAY_S.get(phase, 0)), None
    try:
        for line in proc.stdout:
            seen.append(line)
            if node is None and marker in line:
                if marker != PHASES["dbt"]:
                    time.sleep(delay)
                    break
                node = rng.randint(1, 120)
            elif node is not None and line.startswith(f"{node} of ") and " START " in line:
                break
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    return "".join(seen)


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    root = tmp_path_factory.mktemp("killed")
    reference, killed = root / "reference", root / "killed"
    assert leadron("import", str(FIXTURES / "handmade"), env=home_env(reference, **ENV)).returncode == 0
    shutil.copytree(reference / "landing", killed / "landing")
    first = run(killed)
    assert leadron("import", str(FIXTURES / "handmade" / "late"), env=home_env(reference, **ENV)).returncode == 0
    shutil.copytree(reference / "landing", killed / "landing", dirs_exist_ok=True)
    run(reference)
    seed = int(os.environ.get("LEADRON_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    kills = {phase: killed_run(killed, phase, rng) for phase in PHASES}
    last = run(killed)
    again = run(killed)
    return {"reference": reference, "killed": killed, "first": first, "kills": kills, "last": last,
            "again": again, "seed": seed}  # fmt: skip


def test_killed_runs_then_a_run_publish_the_uninterrupted_marts(homes):
    expected, got = published(homes["reference"]), published(homes["killed"])
    assert sorted(got) == sorted(expected)
    for table, (columns, rows) in expected.items():
        assert got[table][0] == columns and len(got[table][1]) == len(rows), table
        for mine, theirs in zip(got[table][1], rows):  # doubles to 1e-9: sums in another order
            assert all(map(same_value, mine, theirs)), (table, mine, theirs, f"LEADRON_KILL_SEED={homes['seed']}")
    for table in ("fct_events", "mart_kpis_daily", "mart_email_performance_daily", "mart_lead_engagement"):
        assert expected[table][1], table  # the comparison compares something


def test_each_kill_stopped_its_run_in_its_phase(homes):
    for phase, marker in PHASES.items():
        output = homes["kills"][phase]
        assert marker in output, (phase, output[-2000:])
        assert "run: succeeded" not in output and "published version" not in output, phase


def test_a_run_re_derives_the_days_landed_since_the_last_successful_one(homes):
    assert "no successful run recorded: every landed day (3 days)" in homes["first"]
    # The killed runs published nothing: the last run still re-derives the late files' day, and only it.
    assert "2026-03-02: 1 landed batch(es) of its events not yet processed" in homes["last"]
    assert "event days 2026-03-02..2026-03-02" in homes["last"]
    assert "nothing landed since the last successful run" in homes["again"]
    assert "launching" not in homes["again"]
