"""The one Definitions object (`dg dev`, `dg check defs`, `dagster dev -m orchestration.definitions`).

Every area under defs/ (ingest, dbt, ml, publish, reports, exports) holds its assets, jobs, schedules,
sensors and checks side by side; `dg.load_from_defs_folder` merges them. Built lazily by `@dg.definitions`:
importing this module reads no settings and parses nothing.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_definitions() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=PROJECT_ROOT)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
