"""The house's one-way arrows: CLI -> orchestration, api_stub -> leadron -> ml. Walks every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What each package may import of ours (besides itself), and which frameworks it must not import.
ALLOWED = {
    "ml": set(),
    "leadron": {"ml"},
    "orchestration": {"leadron", "ml"},
    "api_stub": {"leadron", "ml"},
    "leadron_cli": {"orchestration", "api_stub", "leadron", "ml"},
}
FORBIDDEN_FRAMEWORKS = {
    "ml": {"dagster", "dagster_dbt", "fastapi", "starlette", "uvicorn", "duckdb"},
    "leadron": {"dagster", "dagster_dbt", "fastapi", "starlette", "uvicorn"},
    "orchestration": {"fastapi", "starlette", "uvicorn"},
    "api_stub": {"dagster", "dagster_dbt"},
}
OURS = set(ALLOWED)


def imported_roots(path: Path) -> set[str]:
    """Top-level module names a file imports (absolute imports; every package of ours uses them)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def violations() -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            roots = imported_roots(path)
            wrong = (roots & OURS) - allowed - {package}
            frameworks = roots & FORBIDDEN_FRAMEWORKS.get(package, set())
            for name in sorted(wrong | frameworks):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_imports_point_one_way():
    assert violations() == []


def test_the_walk_sees_a_wrong_arrow(tmp_path, monkeypatch):
    """The check itself can fail: a domain module importing the Dagster shell is reported."""
    bad = tmp_path / "leadron" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("from orchestration.defs.dbt.jobs import BUILD_JOB\nimport dagster\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations() == ["leadron/bad.py imports dagster", "leadron/bad.py imports orchestration"]


def test_dbt_project_is_sql_only():
    """dbt models and macros import nothing of ours: no Python models (dbt-spark cannot run them)."""
    assert sorted(p.name for p in (ROOT / "dbt_project").rglob("*.py") if "target" not in p.parts) == []


def test_no_source_file_over_400_lines():
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for package in [*ALLOWED, "tests", "bench"]
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 420
    ]
    assert long == []
