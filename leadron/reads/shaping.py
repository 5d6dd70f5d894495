"""Rows as the API and the reports show them: camelCase names, ISO days, UTC times with milliseconds and Z."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic.alias_generators import to_camel


def iso_ms(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, as in the API reference: 2026-02-09T10:30:00.000Z."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def value(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso_ms(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def shape(row: dict[str, Any], drop: tuple[str, ...] = ("tenant_id",)) -> dict[str, Any]:
    """A row as the API shows it: camelCase names, ISO dates and times (UTC, milliseconds, Z)."""
    return {to_camel(k): value(v) for k, v in row.items() if k not in drop}
