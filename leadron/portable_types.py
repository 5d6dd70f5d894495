"""The column types a mart is published with, whichever engine built it.

DuckDB sums integers into HUGEINT and counts days in BIGINT; Spark gives BIGINT and INT; Spark's timestamps come
back with a time zone. Readers (the API, BI tools, exports) should not see which engine ran, so every integer is
published as BIGINT, every fraction as DOUBLE and every timestamp as a plain UTC TIMESTAMP.
"""

from __future__ import annotations

import re

import duckdb

_INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}


def portable_type(duckdb_type: str) -> str:
    if duckdb_type in _INTEGER:
        return "BIGINT"
    if duckdb_type in ("FLOAT", "DOUBLE") or re.fullmatch(r"DECIMAL\(\d+,\d+\)", duckdb_type):
        return "DOUBLE"
    if duckdb_type.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    return duckdb_type


def portable_select(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[str, list[tuple[str, str]]]:
    """A query of `relation` (a table name or a parenthesised query) with the published types (a time zone's
    instant read in UTC), and its (name, published type) columns."""
    parts, columns = [], []
    for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall():
        column = '"' + name.replace('"', '""') + '"'
        target = portable_type(kind)
        columns.append((name, target))
        if kind == "TIMESTAMP WITH TIME ZONE":
            parts.append(f"timezone('UTC', {column}) AS {column}")
        elif target != kind:
            parts.append(f"CAST({column} AS {target}) AS {column}")
        else:
            parts.append(column)
    return f"SELECT {', '.join(parts)} FROM {relation}", columns
