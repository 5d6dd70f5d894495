"""One type for a time zone name, shared by report definitions and schedules."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, WithJsonSchema


def _known_zone(value: str) -> str:
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}")
    return value


# The schema lists every name (so a generated client offers only those); validation names the bad one.
TimeZoneName = Annotated[
    str,
    AfterValidator(_known_zone),
    WithJsonSchema({"type": "string", "enum": sorted(available_timezones() | {"UTC"})}),
]
