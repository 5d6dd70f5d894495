"""The dbt project as Dagster sees it: built in a cached factory, parsed only when stale.

Nothing here runs at import time. `leadron_dbt_project()` parses the project (about
5 s) only when its manifest is missing, unreadable or older than a file under dbt_project/.
"""

from __future__ import annotations

import hashlib
import sys
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path

import orjson
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from leadron.settings import PROJECT_ROOT, dbt_env, exported, get_settings

DBT_DIR = PROJECT_ROOT / "dbt_project"
_FINGERPRINT = "leadron_parse_fingerprint"  # in the target folder, beside the manifest it vouches for


def source_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of every file dbt parses: models, macros, seeds, tests and dbt_project.yml."""
    digest = hashlib.sha256()
    files = [
        root / "dbt_project.yml",
        *sorted(
            p
            for p in (root / "dbt_project").rglob("*")
            if p.is_file()
            and p.suffix in {".sql", ".yml", ".yaml", ".csv", ".md"}
            and "target" not in p.relative_to(root / "dbt_project").parts[:1]
        ),
    ]
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _readable(manifest: Path) -> bool:
    """The manifest is there and whole (a process killed while dbt wrote it leaves a truncated file)."""
    try:
        orjson.loads(manifest.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return True


def dbt_executable() -> str:
    # The dbt installed beside this Python (the venv's), whether or not the venv is on PATH.
    return str(Path(sys.executable).parent / "dbt")


class LeadronDbtCli(DbtCliResource):
    """dagster-dbt's dbt resource without the two things it does before every invocation that these assets do
    not need (both private hooks of the pinned dagster-dbt; tests/test_definitions.py checks they still apply):

    - the in-process dbt adapter: it only serves `fetch_row_counts()` / `fetch_column_metadata()`, which these
      assets do not call, and loading it (profile, project, every macro) cost 1.8 s of each run here (py-spy, a
      refresh run of a small warehouse); dagster-dbt treats a missing adapter as "no metadata fetching";
    - `dbt --version` in a subprocess, to learn the version of the dbt it runs (3.9 s here: a whole dbt start):
      `dbt_executable()` is the dbt of this environment, so its version is the installed dbt-core's.
    """

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 - dagster-dbt's private hook
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(metadata.version("dbt-core"))


def dbt_cli(project: DbtProject) -> DbtCliResource:
    return LeadronDbtCli(project_dir=project, target=get_settings().dbt_target, dbt_executable=dbt_executable())


@cache
def leadron_dbt_project() -> DbtProject:
    settings = get_settings()
    project = DbtProject(
        project_dir=PROJECT_ROOT,
        profiles_dir=DBT_DIR,
        target_path=settings.dbt_target_dir,
        target=settings.dbt_target,
    )
    fingerprint = source_fingerprint()
    stamp = settings.dbt_target_dir / _FINGERPRINT
    stale = not _readable(project.manifest_path) or not stamp.exists() or stamp.read_text() != fingerprint
    if stale:
        with exported(dbt_env(settings)):  # the profile the runs will use, so partial parse holds
            dbt_cli(project).cli(["parse", "--quiet"], target_path=project.target_path).wait()  # -> manifest.json
        stamp.write_text(fingerprint)
    return project
