"""Text that goes into DuckDB SQL where a statement takes no parameter (a COPY target, a relation's files)."""

from __future__ import annotations

from pathlib import Path


def sql_path(path: Path | str) -> str:
    """A path for inside a single-quoted SQL literal. Paths are ours (LEADRON_HOME); quotes doubled anyway."""
    return str(path).replace("'", "''")
